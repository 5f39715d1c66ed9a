"""ChronaPilot operations: the ops console (``python -m chronapilot.ops``, an internal web page
on ``CHRONAPILOT_OPS_PORT``) and the ``chronapilot`` operator CLI (:mod:`chronapilot.ops.cli`)."""
