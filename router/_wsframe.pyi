# The C extension router/_wsframe.c; router/wsframe.py documents the functions (its *_py twins).
from router.wsframe import Frame, FrameError

def parse_frames(
    buffer: bytes, max_frame_payload: int, expect_mask: bool, inside_message: bool = False
) -> tuple[list[Frame], int, FrameError | None]: ...
def build_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, mask: bytes | None = None) -> bytes: ...
