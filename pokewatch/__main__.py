from pokewatch.cli.main import main
from pokewatch.startup import exit_now

exit_now(main())
