"""Runs the kerasdl command line from a checkout: `python cli.py train cnn`."""

from kerasdl.cli import main

if __name__ == "__main__":
    main()
