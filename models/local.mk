# models: build fragment (owned by the module; see Makefile.am)
