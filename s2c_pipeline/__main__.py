from s2c_pipeline.cli.main import main

raise SystemExit(main())
