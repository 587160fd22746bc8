# pybox.mk: links pybox.wasm, CPython as a WASI reactor with pybox's entry
# points (pybox_entry.c), from the objects of the python.wasm build. Used by
# scripts/build-python-wasm.sh as: make -f Makefile -f pybox.mk pybox.wasm
# PYBOX_ENTRY=<path of pybox_entry.c>

Programs/pybox_entry.o: $(PYBOX_ENTRY) $(PYTHON_HEADERS)
	$(MAINCC) -c $(PY_CORE_CFLAGS) -o $@ $(PYBOX_ENTRY)

pybox.wasm: Programs/pybox_entry.o $(LINK_PYTHON_DEPS)
	$(LINKCC) $(PY_CORE_LDFLAGS) $(LINKFORSHARED) -mexec-model=reactor -o $@ Programs/pybox_entry.o $(LINK_PYTHON_OBJS) $(LIBS) $(MODLIBS) $(SYSLIBS)
