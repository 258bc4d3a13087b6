"""`python -m mam_install`: the same command line as the pyz."""

from ._entry import main

main()
