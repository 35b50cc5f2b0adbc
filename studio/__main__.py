"""``python -m studio [FILE]`` opens the editor."""

import sys

from studio.app import main

if __name__ == "__main__":
    sys.exit(main())
