import sys

from pokewatch.cli import main

sys.exit(main())
