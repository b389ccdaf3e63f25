import sys

from pokewatch.cli.main import main

sys.exit(main())
