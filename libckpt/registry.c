/*
 * registry.c: the allowlist registry object, lookup, Python 2 name normalisation and the
 * never-allowed names (a second fence behind the allowlist).
 */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "registry_internal.h"
#include "util.h"

/* ---- built-in entries (allowlist.c) ---- */

static ck_strmap default_map;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static char *default_keys; /* "module\0name" keys for default_map */

static size_t make_key(char *buf, const char *module, const char *name)
{
    size_t ml = strlen(module), nl = strlen(name);
    memcpy(buf, module, ml);
    buf[ml] = '\0';
    memcpy(buf + ml + 1, name, nl);
    return ml + 1 + nl;
}

static void build_default_map(void)
{
    size_t n;
    const ck_reg_entry *e = ck_default_entries(&n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += strlen(e[i].module) + strlen(e[i].name) + 2;
    default_keys = malloc(total);
    ck_strmap_init(&default_map, NULL);
    if (!default_keys) return; /* lookups then find nothing: everything is refused, which is safe */
    char *p = default_keys;
    for (size_t i = 0; i < n; i++) {
        size_t len = make_key(p, e[i].module, e[i].name);
        ck_strmap_put(&default_map, p, len, (void *)&e[i]);
        p += len + 1;
    }
}

const ck_reg_entry *ck_default_lookup(const char *module, const char *name)
{
    pthread_once(&default_once, build_default_map);
    size_t ml = strlen(module), nl = strlen(name);
    char stackbuf[256];
    char *key = ml + nl + 2 <= sizeof stackbuf ? stackbuf : malloc(ml + nl + 2);
    if (!key) return NULL;
    size_t len = make_key(key, module, name);
    const ck_reg_entry *e = ck_strmap_get(&default_map, key, len);
    if (key != stackbuf) free(key);
    return e;
}

/* ---- registry objects ---- */

static ckpt_registry default_registry = {
    .lock = PTHREAD_RWLOCK_INITIALIZER,
    .with_defaults = true,
    .is_static = true,
};

const ckpt_registry *ckpt_registry_default(void) { return &default_registry; }

ckpt_registry *ckpt_registry_new(unsigned flags)
{
    ckpt_registry *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (pthread_rwlock_init(&r->lock, NULL) != 0) {
        free(r);
        return NULL;
    }
    r->with_defaults = !(flags & CKPT_REGISTRY_EMPTY);
    ck_strmap_init(&r->user, NULL);
    return r;
}

void ckpt_registry_free(ckpt_registry *r)
{
    if (!r || r->is_static) return;
    for (size_t i = 0; i < r->owned_len; i++) free(r->owned[i]); /* entry, key and strings in one block */
    free(r->owned);
    ck_strmap_release(&r->user);
    pthread_rwlock_destroy(&r->lock);
    free(r);
}

const ck_reg_entry *ck_registry_lookup(const ckpt_registry *reg, const char *module, const char *name)
{
    if (!reg) reg = &default_registry;
    const ck_reg_entry *e = NULL;
    if (reg->owned_len || !reg->is_static) {
        ckpt_registry *r = (ckpt_registry *)reg;
        pthread_rwlock_rdlock(&r->lock);
        size_t ml = strlen(module), nl = strlen(name);
        char stackbuf[256];
        char *key = ml + nl + 2 <= sizeof stackbuf ? stackbuf : malloc(ml + nl + 2);
        if (key) {
            size_t len = make_key(key, module, name);
            e = ck_strmap_get(&r->user, key, len);
            if (key != stackbuf) free(key);
        }
        pthread_rwlock_unlock(&r->lock);
        if (e) return e;
    }
    if (reg->with_defaults) return ck_default_lookup(module, name);
    return NULL;
}

bool ckpt_registry_is_allowed(const ckpt_registry *reg, const char *module, const char *name)
{
    if (!module || !name) return false;
    ck_normalize_global(&module, &name);
    return ck_registry_lookup(reg, module, name) != NULL;
}

/* ---- never-allowed names ---- */

/* Modules (and their submodules) whose only use in a pickle is running code or touching the system. */
static const char *const never_modules[] = {
    "os", "posix", "nt", "sys", "subprocess", "_posixsubprocess", "importlib", "imp", "zipimport", "pkgutil",
    "runpy", "pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib", "ctypes",
    "_ctypes", "cffi", "code", "codeop", "pdb", "bdb", "timeit", "cProfile", "profile", "trace", "doctest",
    "pty", "shutil", "tempfile", "socket", "_socket", "ssl", "select", "selectors", "asyncio", "multiprocessing",
    "_thread", "threading", "concurrent", "signal", "webbrowser", "urllib", "http", "ftplib", "smtplib", "telnetlib",
    "poplib", "imaplib", "xmlrpc", "requests", "httpx", "aiohttp", "pip", "setuptools", "distutils", "ensurepip",
    "venv", "site", "sysconfig", "builtins.__import__", "_io", "io", "fileinput", "glob", "linecache", "mmap",
    "resource", "gc", "inspect", "_operator", "platform", "pydoc", "idlelib", "lib2to3", "tkinter",
    "torch.hub", "torch.jit", "torch._dynamo", "torch._inductor", "torch.utils.cpp_extension", "numpy.f2py",
    "numpy.distutils", "numpy.testing", "numpy.ctypeslib",
};

/* Single names whose only use is running code, reaching attributes, or touching the system. */
static const char *const never_names[] = {
    "builtins.eval", "builtins.exec", "builtins.compile", "builtins.__import__", "builtins.getattr",
    "builtins.setattr", "builtins.delattr", "builtins.open", "builtins.input", "builtins.breakpoint",
    "builtins.globals", "builtins.locals", "builtins.vars", "builtins.exit", "builtins.quit", "builtins.help",
    "builtins.memoryview", "builtins.__build_class__", "builtins.type", "builtins.super",
    "builtins.classmethod", "builtins.staticmethod", "builtins.property", "builtins.print", "builtins.dir",
    "builtins.apply", "builtins.execfile", "builtins.reload", "builtins.file",
    "functools.partial", "functools.reduce", "functools.partialmethod", "functools.singledispatch",
    "operator.attrgetter", "operator.methodcaller", "operator.itemgetter", "operator.call",
    "types.CodeType", "types.FunctionType", "types.LambdaType", "types.MethodType", "types.ModuleType",
    "types.new_class", "types.BuiltinFunctionType", "types.BuiltinMethodType", "logging.FileHandler",
    "logging.config.listen", "logging.config.fileConfig", "logging.config.dictConfig",
    "numpy.load", "numpy.lib.npyio.load", "numpy.loadtxt", "numpy.fromfile", "numpy.memmap",
    "torch.load", "torch.serialization.load", "torch.serialization._load", "torch.serialization._legacy_load",
    "torch.storage._load_from_bytes", "torch._C._jit_pass_inline", "torch.fx.graph_module._forward_from_src",
    "torch.fx.graph_module.reduce_graph_module", "torch.package._package_importer",
};

bool ck_never_allowed(const char *module, const char *name, const char **why)
{
    size_t ml = strlen(module);
    for (size_t i = 0; i < CK_ARRAY_LEN(never_modules); i++) {
        size_t l = strlen(never_modules[i]);
        if (ml >= l && memcmp(module, never_modules[i], l) == 0 && (module[l] == '\0' || module[l] == '.')) {
            if (why) *why = "its module runs code or touches the system";
            return true;
        }
    }
    for (size_t i = 0; i < CK_ARRAY_LEN(never_names); i++) {
        const char *full = never_names[i];
        const char *dot = strrchr(full, '.');
        if ((size_t)(dot - full) == ml && memcmp(full, module, ml) == 0 && strcmp(dot + 1, name) == 0) {
            if (why) *why = "it runs code, reaches arbitrary attributes, or touches the system";
            return true;
        }
    }
    /* CPython's protocol-4 lookup walks dotted names (pathlib + "os.system"): judge the tail too. */
    const char *dot = strchr(name, '.');
    if (dot) {
        if (why) *why = "a dotted attribute name is walked by Python's unpickler to reach other objects";
        return true;
    }
    return false;
}

/* ---- adding names ---- */

static ckpt_status add_one(ckpt_registry *r, const char *full, ckpt_error *err)
{
    const char *dot = full ? strrchr(full, '.') : NULL;
    if (!dot || dot == full || dot[1] == '\0')
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "'%s' is not a \"module.name\" global", full ? full : "(null)");
    size_t ml = (size_t)(dot - full), nl = strlen(dot + 1);
    /* one block: entry, then "module\0name\0" */
    ck_reg_entry *e = malloc(sizeof *e + ml + nl + 2);
    if (!e) return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    char *key = (char *)(e + 1);
    memcpy(key, full, ml);
    key[ml] = '\0';
    memcpy(key + ml + 1, dot + 1, nl + 1);
    const char *module = key, *name = key + ml + 1;
    const char *why;
    if (ck_never_allowed(module, name, &why)) {
        free(e);
        return ck_error_set(err, CKPT_ERR_INVALID_ARG, "'%s' can never be allowed: %s", full, why);
    }
    const ck_reg_entry *builtin = ck_default_lookup(module, name);
    if (builtin) {
        *e = *builtin; /* a known global keeps its native handler */
    } else {
        memset(e, 0, sizeof *e);
        e->kind = CK_G_CLASS; /* unknown: treated as data (generic object / call node), never run */
    }
    e->module = module;
    e->name = name;
    if (r->owned_len == r->owned_cap) {
        size_t ncap = r->owned_cap ? r->owned_cap * 2 : 16;
        ck_reg_entry **n = realloc(r->owned, ncap * sizeof *n);
        if (!n) {
            free(e);
            return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
        }
        r->owned = n;
        r->owned_cap = ncap;
    }
    if (!ck_strmap_put(&r->user, key, ml + 1 + nl, e)) {
        free(e);
        return ck_error_set(err, CKPT_ERR_NOMEM, "out of memory");
    }
    r->owned[r->owned_len++] = e; /* kept until the registry is freed, so loads may hold pointers */
    return CKPT_OK;
}

ckpt_status ckpt_registry_add_safe_globals(ckpt_registry *r, const char *const *names, size_t count, ckpt_error *err)
{
    if (!r || (!names && count)) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "NULL registry or names");
    if (r->is_static) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "the default registry is read-only: create one with ckpt_registry_new");
    /* validate everything first: all-or-nothing */
    for (size_t i = 0; i < count; i++) {
        const char *full = names[i];
        const char *dot = full ? strrchr(full, '.') : NULL;
        if (!dot || dot == full || dot[1] == '\0')
            return ck_error_set(err, CKPT_ERR_INVALID_ARG, "'%s' is not a \"module.name\" global", full ? full : "(null)");
        char module[512];
        size_t ml = (size_t)(dot - full);
        if (ml >= sizeof module) return ck_error_set(err, CKPT_ERR_INVALID_ARG, "module name too long in '%s'", full);
        memcpy(module, full, ml);
        module[ml] = '\0';
        const char *why;
        if (ck_never_allowed(module, dot + 1, &why))
            return ck_error_set(err, CKPT_ERR_INVALID_ARG, "'%s' can never be allowed: %s", full, why);
    }
    pthread_rwlock_wrlock(&r->lock);
    ckpt_status s = CKPT_OK;
    for (size_t i = 0; i < count && !s; i++) s = add_one(r, names[i], err);
    pthread_rwlock_unlock(&r->lock);
    return s;
}

/* ---- Python 2 names (Lib/_compat_pickle.py, applied when the pickle's protocol is below 3) ---- */

static const struct { const char *from, *to; } import_mapping[] = {
    {"__builtin__", "builtins"}, {"copy_reg", "copyreg"}, {"Queue", "queue"}, {"SocketServer", "socketserver"},
    {"ConfigParser", "configparser"}, {"repr", "reprlib"}, {"tkFileDialog", "tkinter.filedialog"},
    {"tkSimpleDialog", "tkinter.simpledialog"}, {"tkColorChooser", "tkinter.colorchooser"},
    {"tkCommonDialog", "tkinter.commondialog"}, {"Dialog", "tkinter.dialog"}, {"Tkdnd", "tkinter.dnd"},
    {"tkFont", "tkinter.font"}, {"tkMessageBox", "tkinter.messagebox"}, {"ScrolledText", "tkinter.scrolledtext"},
    {"Tkconstants", "tkinter.constants"}, {"Tix", "tkinter.tix"}, {"ttk", "tkinter.ttk"}, {"Tkinter", "tkinter"},
    {"markupbase", "_markupbase"}, {"_winreg", "winreg"}, {"thread", "_thread"}, {"dummy_thread", "_dummy_thread"},
    {"dbhash", "dbm.bsd"}, {"dumbdbm", "dbm.dumb"}, {"dbm", "dbm.ndbm"}, {"gdbm", "dbm.gnu"},
    {"xmlrpclib", "xmlrpc.client"}, {"SimpleXMLRPCServer", "xmlrpc.server"}, {"httplib", "http.client"},
    {"htmlentitydefs", "html.entities"}, {"HTMLParser", "html.parser"}, {"Cookie", "http.cookies"},
    {"cookielib", "http.cookiejar"}, {"BaseHTTPServer", "http.server"}, {"test.test_support", "test.support"},
    {"commands", "subprocess"}, {"urlparse", "urllib.parse"}, {"robotparser", "urllib.robotparser"},
    {"urllib2", "urllib.request"}, {"anydbm", "dbm"}, {"_abcoll", "collections.abc"}, {"cPickle", "pickle"},
    {"_elementtree", "xml.etree.ElementTree"}, {"FileDialog", "tkinter.filedialog"},
    {"SimpleDialog", "tkinter.simpledialog"}, {"DocXMLRPCServer", "xmlrpc.server"},
    {"SimpleHTTPServer", "http.server"}, {"CGIHTTPServer", "http.server"}, {"UserDict", "collections"},
    {"UserList", "collections"}, {"UserString", "collections"}, {"whichdb", "dbm"}, {"StringIO", "io"},
    {"cStringIO", "io"},
};

static const struct { const char *m, *n, *tm, *tn; } name_mapping[] = {
    {"__builtin__", "xrange", "builtins", "range"}, {"__builtin__", "reduce", "functools", "reduce"},
    {"__builtin__", "intern", "sys", "intern"}, {"__builtin__", "unichr", "builtins", "chr"},
    {"__builtin__", "unicode", "builtins", "str"}, {"__builtin__", "long", "builtins", "int"},
    {"itertools", "izip", "builtins", "zip"}, {"itertools", "imap", "builtins", "map"},
    {"itertools", "ifilter", "builtins", "filter"}, {"itertools", "ifilterfalse", "itertools", "filterfalse"},
    {"itertools", "izip_longest", "itertools", "zip_longest"}, {"UserDict", "IterableUserDict", "collections", "UserDict"},
    {"UserList", "UserList", "collections", "UserList"}, {"UserString", "UserString", "collections", "UserString"},
    {"whichdb", "whichdb", "dbm", "whichdb"}, {"_socket", "fromfd", "socket", "fromfd"},
    {"_multiprocessing", "Connection", "multiprocessing.connection", "Connection"},
    {"multiprocessing.process", "Process", "multiprocessing.context", "Process"},
    {"multiprocessing.forking", "Popen", "multiprocessing.popen_fork", "Popen"},
    {"urllib", "ContentTooShortError", "urllib.error", "ContentTooShortError"},
    {"urllib", "getproxies", "urllib.request", "getproxies"}, {"urllib", "pathname2url", "urllib.request", "pathname2url"},
    {"urllib", "quote_plus", "urllib.parse", "quote_plus"}, {"urllib", "quote", "urllib.parse", "quote"},
    {"urllib", "unquote_plus", "urllib.parse", "unquote_plus"}, {"urllib", "unquote", "urllib.parse", "unquote"},
    {"urllib", "url2pathname", "urllib.request", "url2pathname"}, {"urllib", "urlcleanup", "urllib.request", "urlcleanup"},
    {"urllib", "urlencode", "urllib.parse", "urlencode"}, {"urllib", "urlopen", "urllib.request", "urlopen"},
    {"urllib", "urlretrieve", "urllib.request", "urlretrieve"}, {"urllib2", "HTTPError", "urllib.error", "HTTPError"},
    {"urllib2", "URLError", "urllib.error", "URLError"}, {"__builtin__", "basestring", "builtins", "str"},
    {"exceptions", "StandardError", "builtins", "Exception"}, {"UserDict", "UserDict", "collections", "UserDict"},
    {"socket", "_socketobject", "socket", "SocketType"},
    {"multiprocessing", "AuthenticationError", "multiprocessing.context", "AuthenticationError"},
    {"multiprocessing", "BufferTooShort", "multiprocessing.context", "BufferTooShort"},
    {"multiprocessing", "ProcessError", "multiprocessing.context", "ProcessError"},
    {"multiprocessing", "TimeoutError", "multiprocessing.context", "TimeoutError"},
};

void ck_normalize_global(const char **module, const char **name)
{
    for (size_t i = 0; i < CK_ARRAY_LEN(name_mapping); i++)
        if (strcmp(*module, name_mapping[i].m) == 0 && strcmp(*name, name_mapping[i].n) == 0) {
            *module = name_mapping[i].tm;
            *name = name_mapping[i].tn;
            return;
        }
    /* exceptions.X -> builtins.X (every Python 2 exception class is a builtin in Python 3) */
    if (strcmp(*module, "exceptions") == 0) {
        *module = "builtins";
        return;
    }
    for (size_t i = 0; i < CK_ARRAY_LEN(import_mapping); i++)
        if (strcmp(*module, import_mapping[i].from) == 0) {
            *module = import_mapping[i].to;
            return;
        }
}
