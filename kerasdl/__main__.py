"""`python -m kerasdl ...` runs the command line."""

from kerasdl.cli import main

main()
