"""`python -m mam_install`: the same command line as the pyz."""

from .cli import main

main()
