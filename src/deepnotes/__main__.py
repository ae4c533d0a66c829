from deepnotes.cli import main

raise SystemExit(main())
