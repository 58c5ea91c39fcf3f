"""`python -m digest` runs the command line."""

from digest.cli import app

if __name__ == "__main__":  # not when a render process imports the parent's main module
    app()
