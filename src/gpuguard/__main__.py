"""`python -m gpuguard` runs the command line."""

from gpuguard.cli.main import main

if __name__ == "__main__":  # pragma: no cover
    main()
