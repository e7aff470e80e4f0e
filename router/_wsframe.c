/*
 * router._wsframe: the C implementation of router/wsframe.py (WebSocket frame parsing and building as
 * autobahn's WebSocketProtocol does it). router/wsframe.py is the reference: same functions, same
 * results, same checks in the same order, same error reasons. Read its docstring first.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define PROTOCOL_ERROR 1002
#define MESSAGE_TOO_BIG 1009
#define MAX_LENGTH 0x7FFFFFFFFFFFFFFFULL

/* dst[k] = src[k] ^ mask[k % 4], eight bytes at a time where possible. */
static void
unmask(unsigned char *dst, const unsigned char *src, Py_ssize_t n, const unsigned char *mask)
{
    Py_ssize_t k = 0;
    unsigned char key8[8];
    uint64_t key, word;
    memcpy(key8, mask, 4);
    memcpy(key8 + 4, mask, 4);
    memcpy(&key, key8, 8);
    for (; k + 8 <= n; k += 8) {
        memcpy(&word, src + k, 8);
        word ^= key;
        memcpy(dst + k, &word, 8);
    }
    for (; k < n; k++) {
        dst[k] = src[k] ^ mask[k & 3];
    }
}

/* The first protocol violation autobahn finds in a frame's first two bytes (a new reference to its
 * reason), NULL with no exception set if there is none, NULL with an exception on a Python error. */
static PyObject *
header_error(unsigned char b0, unsigned char b1, int expect_mask, int inside_message)
{
    int fin = (b0 & 0x80) != 0;
    int rsv = (b0 & 0x70) >> 4;
    int opcode = b0 & 0x0F;
    int masked = (b1 & 0x80) != 0;
    int length1 = b1 & 0x7F;

    if (rsv != 0)
        return PyUnicode_FromFormat("RSV = %d and no extension negotiated", rsv);
    if (expect_mask && !masked)
        return PyUnicode_FromString("unmasked client-to-server frame");
    if (!expect_mask && masked)
        return PyUnicode_FromString("masked server-to-client frame");
    if (opcode > 7) {
        if (!fin)
            return PyUnicode_FromString("fragmented control frame");
        if (length1 > 125)
            return PyUnicode_FromString("control frame with payload length > 125 octets");
        if (opcode != 8 && opcode != 9 && opcode != 10)
            return PyUnicode_FromFormat("control frame using reserved opcode %d", opcode);
        if (opcode == 8 && length1 == 1)
            return PyUnicode_FromString("received close control frame with payload len 1");
        return NULL;
    }
    if (opcode > 2)
        return PyUnicode_FromFormat("data frame using reserved opcode %d", opcode);
    if (!inside_message && opcode == 0)
        return PyUnicode_FromString("received continuation data frame outside fragmented message");
    if (inside_message && opcode != 0)
        return PyUnicode_FromString("received non-continuation data frame while inside fragmented message");
    return NULL;
}

PyDoc_STRVAR(parse_frames_doc,
"parse_frames(buffer, max_frame_payload, expect_mask, inside_message=False) -> (frames, consumed, error)\n\n"
"Parse the complete WebSocket frames at the start of buffer (see router.wsframe.parse_frames_py).");

static PyObject *
parse_frames(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"buffer", "max_frame_payload", "expect_mask", "inside_message", NULL};
    Py_buffer view;
    Py_ssize_t max_frame = 0;
    int expect_mask = 0, inside_message = 0;
    PyObject *frames = NULL, *error = NULL, *reason = NULL, *result = NULL;
    const unsigned char *data;
    Py_ssize_t end, pos = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*np|p:parse_frames", keywords, &view, &max_frame,
                                     &expect_mask, &inside_message))
        return NULL;
    data = (const unsigned char *)view.buf;
    end = view.len;
    frames = PyList_New(0);
    if (frames == NULL)
        goto done;

    while (end - pos >= 2) {
        unsigned char b0 = data[pos], b1 = data[pos + 1];
        int fin = (b0 & 0x80) != 0;
        int opcode = b0 & 0x0F;
        int masked = (b1 & 0x80) != 0;
        unsigned long long length = b1 & 0x7F;
        Py_ssize_t i = pos + 2, extended;
        const unsigned char *mask = NULL;
        PyObject *payload, *frame;

        reason = header_error(b0, b1, expect_mask, inside_message);
        if (reason != NULL) {
            error = Py_BuildValue("(iN)", PROTOCOL_ERROR, reason);
            reason = NULL;
            break;
        }
        if (PyErr_Occurred())
            goto done;
        extended = length == 126 ? 2 : length == 127 ? 8 : 0;
        if (end - i < extended + (masked ? 4 : 0))
            break;
        if (length == 126) {
            length = ((unsigned long long)data[i] << 8) | data[i + 1];
            if (length < 126) {
                error = Py_BuildValue("(is)", PROTOCOL_ERROR,
                                      "invalid data frame length (not using minimal length encoding)");
                break;
            }
        }
        else if (length == 127) {
            int k;
            length = 0;
            for (k = 0; k < 8; k++)
                length = (length << 8) | data[i + k];
            if (length > MAX_LENGTH) {
                error = Py_BuildValue("(is)", PROTOCOL_ERROR, "invalid data frame length (>2^63)");
                break;
            }
            if (length < 65536) {
                error = Py_BuildValue("(is)", PROTOCOL_ERROR,
                                      "invalid data frame length (not using minimal length encoding)");
                break;
            }
        }
        i += extended;
        if (masked) {
            mask = data + i;
            i += 4;
        }
        if (opcode <= 7 && max_frame > 0 && length > (unsigned long long)max_frame) {
            reason = PyUnicode_FromFormat(
                "received WebSocket frame size %llu exceeds payload limit of %zd octets", length, max_frame);
            if (reason == NULL)
                goto done;
            error = Py_BuildValue("(iN)", MESSAGE_TOO_BIG, reason);
            reason = NULL;
            break;
        }
        if ((unsigned long long)(end - i) < length)
            break;
        if (masked) {
            payload = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)length);
            if (payload == NULL)
                goto done;
            unmask((unsigned char *)PyBytes_AS_STRING(payload), data + i, (Py_ssize_t)length, mask);
        }
        else {
            payload = PyBytes_FromStringAndSize((const char *)data + i, (Py_ssize_t)length);
            if (payload == NULL)
                goto done;
        }
        frame = Py_BuildValue("(OiiON)", fin ? Py_True : Py_False, 0, opcode, masked ? Py_True : Py_False,
                              payload);
        if (frame == NULL || PyList_Append(frames, frame) < 0) {
            Py_XDECREF(frame);
            goto done;
        }
        Py_DECREF(frame);
        if (opcode <= 7)
            inside_message = !fin;
        pos = i + (Py_ssize_t)length;
    }
    if (PyErr_Occurred())
        goto done;
    if (error == NULL) {
        error = Py_None;
        Py_INCREF(error);
    }
    result = Py_BuildValue("(OnO)", frames, pos, error);

done:
    Py_XDECREF(frames);
    Py_XDECREF(error);
    PyBuffer_Release(&view);
    return result;
}

PyDoc_STRVAR(build_frame_doc,
"build_frame(opcode, payload, fin=True, rsv=0, mask=None) -> bytes\n\n"
"The frame autobahn's sendFrame writes (see router.wsframe.build_frame_py).");

static PyObject *
build_frame(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"opcode", "payload", "fin", "rsv", "mask", NULL};
    int opcode, fin = 1, rsv = 0;
    Py_buffer payload, mask = {0};
    PyObject *mask_obj = Py_None, *result = NULL;
    unsigned char header[14];
    Py_ssize_t header_len, length;
    int masked = 0;
    unsigned char *out;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iy*|piO:build_frame", keywords, &opcode, &payload, &fin,
                                     &rsv, &mask_obj))
        return NULL;
    if (mask_obj != Py_None) {
        if (PyObject_GetBuffer(mask_obj, &mask, PyBUF_SIMPLE) < 0)
            goto done;
        masked = mask.len > 0; /* autobahn: `if mask`, so an empty mask is no mask */
        if (masked && mask.len != 4) {
            PyErr_SetString(PyExc_ValueError, "a WebSocket mask is 4 bytes");
            goto done;
        }
    }
    length = payload.len;
    /* Python's % (what autobahn uses) is never negative; C's is for a negative operand. */
    header[0] = (unsigned char)((fin ? 0x80 : 0) | (((rsv % 8) + 8) % 8) << 4 | (((opcode % 128) + 128) % 128));
    header[1] = masked ? 0x80 : 0;
    if (length <= 125) {
        header[1] |= (unsigned char)length;
        header_len = 2;
    }
    else if (length <= 0xFFFF) {
        header[1] |= 126;
        header[2] = (unsigned char)(length >> 8);
        header[3] = (unsigned char)length;
        header_len = 4;
    }
    else {
        unsigned long long n = (unsigned long long)length;
        int k;
        header[1] |= 127;
        for (k = 0; k < 8; k++)
            header[2 + k] = (unsigned char)(n >> (56 - 8 * k));
        header_len = 10;
    }
    if (masked) {
        memcpy(header + header_len, mask.buf, 4);
        header_len += 4;
    }
    result = PyBytes_FromStringAndSize(NULL, header_len + length);
    if (result == NULL)
        goto done;
    out = (unsigned char *)PyBytes_AS_STRING(result);
    memcpy(out, header, header_len);
    if (masked)
        unmask(out + header_len, (const unsigned char *)payload.buf, length, (const unsigned char *)mask.buf);
    else
        memcpy(out + header_len, payload.buf, length);

done:
    PyBuffer_Release(&payload);
    if (mask.obj != NULL)
        PyBuffer_Release(&mask);
    return result;
}

static PyMethodDef methods[] = {
    {"parse_frames", (PyCFunction)(void (*)(void))parse_frames, METH_VARARGS | METH_KEYWORDS, parse_frames_doc},
    {"build_frame", (PyCFunction)(void (*)(void))build_frame, METH_VARARGS | METH_KEYWORDS, build_frame_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "router._wsframe",
    "WebSocket frame parsing and building in C (the reference is router.wsframe).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__wsframe(void)
{
    return PyModule_Create(&module_def);
}
