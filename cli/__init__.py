"""The ``hyperldm-engine`` command line (installed as the ``hyperldm_cli`` package)."""
