"""
Who may do what: the one place a permission is decided.

- :mod:`router.authz.model`: roles and rules as written (config file, admin API, CLI), inheritance, checks;
- :mod:`router.authz.rules`: what a rule covers, the decision for a URI (``decide``) or a pattern
  (``pattern_allowed``);
- :mod:`router.authz.static`: rules compiled into Crossbar's static permissions, and whether those are exact;
- :mod:`router.authz.effective`: a realm's effective roles, the config file's then changes stored at run time;
- :mod:`router.authz.install`: putting a realm's roles into the running router (start-up, admin changes).
"""
