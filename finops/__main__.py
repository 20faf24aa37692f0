import sys

from aifinops.cli import main

sys.exit(main())
