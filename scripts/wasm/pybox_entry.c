/*
 * pybox_entry.c: the entry points of pybox.wasm, CPython 3.11 linked as a
 * WASI reactor for pybox's wasm backend (internal/wasm). Built and linked by
 * scripts/build-python-wasm.sh next to python.wasm (the plain command).
 *
 * The host calls, on a fresh instance:
 *
 *   _initialize()   wasi-libc's constructors (environ, preopens)
 *   pybox_init()    start CPython from the WASI argv (the same argv as
 *                   python.wasm: -I -S -B -c <prelude + runner> IN OUT), run
 *                   the runner's source without calling its main(); 0 on
 *                   success
 *   pybox_run()     run the runner's main(): read exec frames from IN, answer
 *                   on OUT; returns its exit code
 *
 * Between pybox_init and pybox_run the host may take a snapshot of the
 * linear memory (nothing else of the instance changes: the only mutable
 * global is the stack pointer, back at its initial value when an export
 * returns) and later restore it into a new instance, skipping _initialize
 * and pybox_init. So pybox_run first brings what was captured at init up to
 * date with the new instance: the environment (os.environ and the C
 * environ), preopened directories added after the snapshot (read-only
 * mounts), and the random module's state if it was imported.
 * pybox_init refuses (returns non-zero) if init left a file open, since a
 * restored instance would not have it.
 */
#include "Python.h"

#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>
#include <wasi/libc.h>

/* The runner's namespace and its glue function, set by pybox_init. */
static PyObject *run_fn;
/* Preopened directories seen by pybox_init (fds 3 .. 3+npreopens-1). */
static int npreopens = -1;

/* Glue, run in the runner's namespace after its source. */
static const char glue[] =
    "def _pybox_run(env, _main=main):\n"
    "    import os, sys\n"
    "    e = os.environb if getattr(os, 'supports_bytes_environ', False) else None\n"
    "    os.environ.clear()\n"
    "    for kv in env:\n"
    "        k, _, v = kv.partition(b'=')\n"
    "        if e is not None:\n"
    "            e[k] = v\n"
    "        else:\n"
    "            os.environ[os.fsdecode(k)] = os.fsdecode(v)\n"
    "    r = sys.modules.get('random')\n"
    "    if r is not None:\n"
    "        r.seed()\n"
    "    return _main()\n";

static int count_preopens(void) {
	int fd = 3;
	__wasi_prestat_t ps;
	while (__wasi_fd_prestat_get(fd, &ps) == __WASI_ERRNO_SUCCESS)
		fd++;
	return fd - 3;
}

/* An fd >= 3 that is open and not a preopen (a leftover of init). */
static int leftover_fd(void) {
	__wasi_fdstat_t st;
	for (int fd = 3 + npreopens; fd < 3 + npreopens + 64; fd++) {
		if (__wasi_fd_fdstat_get(fd, &st) == __WASI_ERRNO_SUCCESS)
			return fd;
	}
	return -1;
}

static char *prestat_name(int fd) {
	__wasi_prestat_t ps;
	if (__wasi_fd_prestat_get(fd, &ps) != __WASI_ERRNO_SUCCESS || ps.tag != __WASI_PREOPENTYPE_DIR)
		return NULL;
	size_t n = ps.u.dir.pr_name_len;
	char *name = malloc(n + 1);
	if (name == NULL)
		return NULL;
	if (__wasi_fd_prestat_dir_name(fd, (uint8_t *)name, n) != __WASI_ERRNO_SUCCESS) {
		free(name);
		return NULL;
	}
	name[n] = 0;
	return name;
}

__attribute__((export_name("pybox_init"))) int pybox_init(void) {
	__wasi_size_t argc, size;
	if (run_fn != NULL)
		return 2;
	if (__wasi_args_sizes_get(&argc, &size) != __WASI_ERRNO_SUCCESS)
		return 3;
	char **argv = calloc(argc + 1, sizeof(char *));
	char *buf = malloc(size);
	if (argv == NULL || buf == NULL || __wasi_args_get((uint8_t **)argv, (uint8_t *)buf) != __WASI_ERRNO_SUCCESS)
		return 3;

	/* As Py_BytesMain does, without running anything. */
	PyPreConfig pre;
	PyPreConfig_InitPythonConfig(&pre);
	PyStatus st = Py_PreInitializeFromBytesArgs(&pre, (Py_ssize_t)argc, argv);
	if (PyStatus_Exception(st))
		return 4;
	PyConfig config;
	PyConfig_InitPythonConfig(&config);
	st = PyConfig_SetBytesArgv(&config, (Py_ssize_t)argc, argv);
	if (!PyStatus_Exception(st))
		st = PyConfig_Read(&config); /* parses argv: sets run_command */
	if (!PyStatus_Exception(st))
		st = Py_InitializeFromConfig(&config);
	if (PyStatus_Exception(st)) {
		PyConfig_Clear(&config);
		return 4;
	}
	if (config.run_command == NULL) {
		PyConfig_Clear(&config);
		fprintf(stderr, "pybox_init: want -c <runner> in argv\n");
		return 5;
	}
	PyObject *code = PyUnicode_FromWideChar(config.run_command, -1);
	PyConfig_Clear(&config);
	free(argv);
	free(buf);

	int rc = 6;
	PyObject *ns = PyDict_New();
	if (code == NULL || ns == NULL)
		goto out;
	const char *src = PyUnicode_AsUTF8(code);
	PyObject *name = PyUnicode_FromString("__pybox__");
	int bad = src == NULL || name == NULL || PyDict_SetItemString(ns, "__name__", name) < 0 ||
	          PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0;
	Py_XDECREF(name);
	if (bad)
		goto out;
	PyObject *r = PyRun_String(src, Py_file_input, ns, ns);
	if (r == NULL)
		goto out;
	Py_DECREF(r);
	r = PyRun_String(glue, Py_file_input, ns, ns);
	if (r == NULL)
		goto out;
	Py_DECREF(r);
	run_fn = PyDict_GetItemString(ns, "_pybox_run");
	if (run_fn == NULL)
		goto out;
	Py_INCREF(run_fn);
	/* Nothing buffered may be carried into a restored instance. */
	PyObject *f = PyRun_String("import sys\nfor _f in (sys.stdout, sys.stderr): _f.flush()\n", Py_file_input, ns, ns);
	if (f == NULL)
		goto out;
	Py_DECREF(f);
	npreopens = count_preopens();
	rc = leftover_fd() >= 0 ? 7 : 0;
out:
	if (PyErr_Occurred())
		PyErr_Print();
	Py_XDECREF(code);
	Py_XDECREF(ns);
	fflush(stdout);
	fflush(stderr);
	return rc;
}

/* The environment of this instance, from the host, as a list of bytes. */
static PyObject *host_env(void) {
	__wasi_size_t n, size;
	if (__wasi_environ_sizes_get(&n, &size) != __WASI_ERRNO_SUCCESS)
		return PyErr_Format(PyExc_OSError, "environ_sizes_get failed");
	char **env = calloc(n + 1, sizeof(char *));
	char *buf = malloc(size + 1);
	if (env == NULL || buf == NULL) {
		free(env);
		free(buf);
		return PyErr_NoMemory();
	}
	PyObject *list = NULL;
	if (__wasi_environ_get((uint8_t **)env, (uint8_t *)buf) != __WASI_ERRNO_SUCCESS) {
		PyErr_Format(PyExc_OSError, "environ_get failed");
		goto out;
	}
	list = PyList_New(0);
	for (__wasi_size_t i = 0; list != NULL && i < n; i++) {
		PyObject *b = PyBytes_FromString(env[i]);
		if (b == NULL || PyList_Append(list, b) < 0)
			Py_CLEAR(list);
		Py_XDECREF(b);
	}
out:
	free(env);
	free(buf);
	return list;
}

__attribute__((export_name("pybox_run"))) int pybox_run(void) {
	if (run_fn == NULL)
		return 120;
	/* Preopens: the ones seen at init must still be there, in the same
	 * order; any after them (mounts of this run) are registered. */
	if (count_preopens() < npreopens)
		return 121;
	for (int fd = 3 + npreopens;; fd++) {
		char *name = prestat_name(fd);
		if (name == NULL)
			break;
		if (__wasilibc_register_preopened_fd(fd, name) != 0)
			return 122;
		npreopens++;
	}
	PyObject *env = host_env();
	PyObject *r = env == NULL ? NULL : PyObject_CallOneArg(run_fn, env);
	Py_XDECREF(env);
	int rc = 0;
	if (r == NULL) {
		/* As python's main: SystemExit exits with its code, any other
		 * exception prints a traceback and exits 1. */
		PyErr_Print();
		rc = 1;
	} else {
		if (PyLong_Check(r))
			rc = (int)PyLong_AsLong(r);
		else if (r != Py_None)
			rc = 1;
		Py_DECREF(r);
	}
	PyErr_Clear();
	fflush(stdout);
	fflush(stderr);
	return rc;
}
