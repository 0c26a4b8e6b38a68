from panicwatch.cli import main

raise SystemExit(main())
