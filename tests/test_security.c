/*
 * test_security.c: hand-made pickles that try to run code. Every way a pickle can name a callable
 * (GLOBAL, STACK_GLOBAL from memoised or protocol-0 strings, INST, OBJ, REDUCE, a call whose result is
 * thrown away, Python 2 names, dotted names) is refused with CKPT_ERR_BLOCKED at the opcode that names
 * the global, before anything after it runs; the error names the global, the record, the byte offset,
 * the opcode and the fix. A payload that runs `touch FILE` under Python leaves no file under libckpt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pickle_opcodes.h"
#include "support.h"

/* ---- pickle building ---- */

typedef struct {
    uint8_t b[8192];
    size_t n;
} pk;

static void put(pk *p, const void *d, size_t n)
{
    ck_assert_uint_le(p->n + n, sizeof p->b);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}
static void op(pk *p, uint8_t c) { put(p, &c, 1); }
static void text(pk *p, const char *s) { put(p, s, strlen(s)); }
/* a literal that may contain NUL bytes */
#define BYTES(p, lit) put(p, lit, sizeof(lit) - 1)
/* SHORT_BINUNICODE */
static void sbu(pk *p, const char *s)
{
    op(p, OP_SHORT_BINUNICODE);
    op(p, (uint8_t)strlen(s));
    text(p, s);
}
/* BINUNICODE */
static void bu(pk *p, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    op(p, OP_BINUNICODE);
    uint8_t len[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    put(p, len, 4);
    text(p, s);
}
/* protocol-0 STRING 'text' */
static void str0(pk *p, const char *s)
{
    text(p, "S'");
    text(p, s);
    text(p, "'\n");
}
/* GLOBAL module\nname\n */
static void global(pk *p, const char *module, const char *name)
{
    op(p, OP_GLOBAL);
    text(p, module);
    op(p, '\n');
    text(p, name);
    op(p, '\n');
}

/* ---- the payloads ---- */

static char g_marker[512]; /* a file the payloads try to create */
static char g_command[600];

typedef enum {
    V_GLOBAL_REDUCE,      /* protocol 2: GLOBAL, args tuple, REDUCE */
    V_STACK_GLOBAL_MEMO,  /* protocol 4: module and name strings memoised, fetched back, STACK_GLOBAL */
    V_STACK_GLOBAL_STR0,  /* STACK_GLOBAL whose operands are protocol-0 STRING opcodes */
    V_INST,               /* protocol 0: MARK args INST module name */
    V_OBJ,                /* protocol 1: MARK GLOBAL args OBJ */
    V_REDUCE0,            /* protocol 0: GLOBAL, MARK args TUPLE, REDUCE */
    V_POPPED,             /* the call's result is POPped and the pickle returns None */
    V_AFTER_ALLOWED,      /* an allowed call first, then the payload */
    V_COUNT
} vector;

static const char *const vector_names[V_COUNT] = {
    "GLOBAL+REDUCE", "STACK_GLOBAL(memo)", "STACK_GLOBAL(STRING)", "INST", "OBJ", "REDUCE(proto 0)", "POPped call",
    "after an allowed call",
};

/* Builds the pickle; *at receives the offset of the opcode that names the global and *opc the opcode. */
static void build(pk *p, vector v, const char *module, const char *name, size_t *at, uint8_t *opc)
{
    p->n = 0;
    switch (v) {
    case V_GLOBAL_REDUCE:
        text(p, "\x80\x02");
        *at = p->n;
        *opc = OP_GLOBAL;
        global(p, module, name);
        bu(p, g_command);
        op(p, OP_TUPLE1);
        op(p, OP_REDUCE);
        break;
    case V_STACK_GLOBAL_MEMO:
        text(p, "\x80\x04");
        sbu(p, module);
        op(p, OP_MEMOIZE);
        op(p, OP_POP);
        sbu(p, name);
        op(p, OP_MEMOIZE);
        op(p, OP_POP);
        BYTES(p, "h\x00");
        BYTES(p, "h\x01");
        *at = p->n;
        *opc = OP_STACK_GLOBAL;
        op(p, OP_STACK_GLOBAL);
        sbu(p, g_command);
        op(p, OP_TUPLE1);
        op(p, OP_REDUCE);
        break;
    case V_STACK_GLOBAL_STR0:
        str0(p, module);
        str0(p, name);
        *at = p->n;
        *opc = OP_STACK_GLOBAL;
        op(p, OP_STACK_GLOBAL);
        op(p, OP_MARK);
        str0(p, g_command);
        op(p, OP_TUPLE);
        op(p, OP_REDUCE);
        break;
    case V_INST:
        op(p, OP_MARK);
        str0(p, g_command);
        *at = p->n;
        *opc = OP_INST;
        op(p, OP_INST);
        text(p, module);
        op(p, '\n');
        text(p, name);
        op(p, '\n');
        break;
    case V_OBJ:
        op(p, OP_MARK);
        *at = p->n;
        *opc = OP_GLOBAL;
        global(p, module, name);
        bu(p, g_command);
        op(p, OP_OBJ);
        break;
    case V_REDUCE0:
        *at = p->n;
        *opc = OP_GLOBAL;
        global(p, module, name);
        op(p, OP_MARK);
        str0(p, g_command);
        op(p, OP_TUPLE);
        op(p, OP_REDUCE);
        break;
    case V_POPPED:
        text(p, "\x80\x02");
        *at = p->n;
        *opc = OP_GLOBAL;
        global(p, module, name);
        bu(p, g_command);
        op(p, OP_TUPLE1);
        op(p, OP_REDUCE);
        op(p, OP_POP);
        op(p, OP_NONE);
        break;
    case V_AFTER_ALLOWED:
        text(p, "\x80\x02");
        global(p, "collections", "OrderedDict");
        op(p, OP_EMPTY_TUPLE);
        op(p, OP_REDUCE);
        op(p, OP_POP);
        *at = p->n;
        *opc = OP_GLOBAL;
        global(p, module, name);
        bu(p, g_command);
        op(p, OP_TUPLE1);
        op(p, OP_REDUCE);
        break;
    case V_COUNT: break;
    }
    op(p, OP_STOP);
}

/* Loads p and checks the refusal: code, global, record, offset, opcode and the two ways to allow. */
static void assert_blocked(const pk *p, const char *global_name, size_t at, uint8_t opc, const char *what)
{
    ckpt_error *err = ckpt_error_new();
    ckpt_checkpoint *ck = NULL;
    ckpt_status s = tst_load_pickle(p->b, p->n, NULL, 0, NULL, &ck, err);
    const char *msg = ckpt_error_message(err);
    ck_assert_msg(s == CKPT_ERR_BLOCKED, "%s: expected CKPT_ERR_BLOCKED, got %s: %s", what, ckpt_status_name(s), msg);
    ck_assert_ptr_null(ck);
    ck_assert_msg(ckpt_error_global(err) && strcmp(ckpt_error_global(err), global_name) == 0,
                  "%s: ckpt_error_global is '%s', expected '%s'", what,
                  ckpt_error_global(err) ? ckpt_error_global(err) : "(null)", global_name);
    ck_assert_msg(ckpt_error_record(err) && strcmp(ckpt_error_record(err), "archive/data.pkl") == 0, "%s: record %s", what,
                  ckpt_error_record(err) ? ckpt_error_record(err) : "(null)");
    ck_assert_msg(ckpt_error_offset(err) == (int64_t)at, "%s: offset %lld, expected %zu (%s)", what,
                  (long long)ckpt_error_offset(err), at, msg);
    ck_assert_msg(ckpt_error_opcode(err) == opc, "%s: opcode %d, expected %s (%s)", what, ckpt_error_opcode(err),
                  ck_pickle_opcode_name(opc), msg);
    char want[600];
    snprintf(want, sizeof want, "archive/data.pkl: byte %zu, opcode %s: global '%s' is not allowed", at,
             ck_pickle_opcode_name(opc), global_name);
    ck_assert_msg(strncmp(msg, want, strlen(want)) == 0, "%s: message '%s' does not start with '%s'", what, msg, want);
    snprintf(want, sizeof want, "ckpt_registry_add_safe_globals(reg, (const char *[]){\"%s\"}, 1, err)", global_name);
    ck_assert_msg(strstr(msg, want) != NULL, "%s: message '%s' lacks '%s'", what, msg, want);
    snprintf(want, sizeof want, "--allow %s", global_name);
    ck_assert_msg(strstr(msg, want) != NULL, "%s: message '%s' lacks '%s'", what, msg, want);
    ckpt_error_free(err);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_marker, sizeof g_marker, "%s/ckpt_security_%ld_marker", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    unlink(g_marker);
    snprintf(g_command, sizeof g_command, "touch %s", g_marker);
}

static bool marker_exists(void)
{
    struct stat st;
    return stat(g_marker, &st) == 0;
}

static const struct { const char *module, *name, *global; } targets[] = {
    {"os", "system", "os.system"},
    {"builtins", "eval", "builtins.eval"},
    {"posix", "system", "posix.system"},
    {"subprocess", "Popen", "subprocess.Popen"},
};
#define N_TARGETS (sizeof targets / sizeof targets[0])

/* Every target through every vector: loop index = target * V_COUNT + vector. */
START_TEST(payload_refused)
{
    size_t t = (size_t)_i / V_COUNT;
    vector v = (vector)(_i % V_COUNT);
    pk p;
    size_t at = 0;
    uint8_t opc = 0;
    build(&p, v, targets[t].module, targets[t].name, &at, &opc);
    char what[128];
    snprintf(what, sizeof what, "%s via %s", targets[t].global, vector_names[v]);
    assert_blocked(&p, targets[t].global, at, opc, what);
    ck_assert_msg(!marker_exists(), "%s: the payload ran", what);
}
END_TEST

/* Protocol 0-2 names are normalised as Python 3 does, so __builtin__.eval is builtins.eval. */
START_TEST(python2_names_normalised)
{
    pk p;
    size_t at;
    uint8_t opc;
    build(&p, V_GLOBAL_REDUCE, "__builtin__", "eval", &at, &opc);
    assert_blocked(&p, "builtins.eval", at, opc, "__builtin__.eval, protocol 2");
    build(&p, V_REDUCE0, "__builtin__", "eval", &at, &opc);
    assert_blocked(&p, "builtins.eval", at, opc, "__builtin__.eval, protocol 0");
    build(&p, V_INST, "__builtin__", "exec", &at, &opc);
    assert_blocked(&p, "builtins.exec", at, opc, "__builtin__.exec via INST");
    build(&p, V_GLOBAL_REDUCE, "commands", "getoutput", &at, &opc); /* Python 2 commands -> subprocess */
    assert_blocked(&p, "subprocess.getoutput", at, opc, "commands.getoutput");
    /* protocol 3+ pickles are not normalised (Python's fix_imports): the name is refused as written */
    p.n = 0;
    text(&p, "\x80\x03");
    global(&p, "__builtin__", "eval");
    bu(&p, "1");
    text(&p, "\x85R.");
    assert_blocked(&p, "__builtin__.eval", 2, OP_GLOBAL, "__builtin__.eval, protocol 3");
    ck_assert(!marker_exists());
}
END_TEST

/* Protocol 4 lets Python walk dotted names from a harmless module (pathlib + "os.system"). */
START_TEST(dotted_names_refused)
{
    pk p;
    size_t at;
    uint8_t opc;
    build(&p, V_STACK_GLOBAL_MEMO, "pathlib", "os.system", &at, &opc);
    assert_blocked(&p, "pathlib.os.system", at, opc, "pathlib + os.system");
    build(&p, V_GLOBAL_REDUCE, "torch", "serialization.os.system", &at, &opc);
    assert_blocked(&p, "torch.serialization.os.system", at, opc, "torch + serialization.os.system");
    build(&p, V_STACK_GLOBAL_MEMO, "collections", "OrderedDict.__class__", &at, &opc);
    assert_blocked(&p, "collections.OrderedDict.__class__", at, opc, "an attribute of an allowed class");
    /* getattr-style gadgets */
    build(&p, V_GLOBAL_REDUCE, "builtins", "getattr", &at, &opc);
    assert_blocked(&p, "builtins.getattr", at, opc, "builtins.getattr");
    ck_assert(!marker_exists());
}
END_TEST

/* The refusal happens at the global: what follows it is never looked at (not even garbage). */
START_TEST(refused_before_anything_else)
{
    pk p;
    p.n = 0;
    text(&p, "\x80\x02");
    global(&p, "os", "system");
    text(&p, "\xff\xff\xff garbage that is not a pickle");
    assert_blocked(&p, "os.system", 2, OP_GLOBAL, "global followed by garbage");
    /* a refused class named by INST is refused even when its argument MARK is missing (Python resolves
     * the class first, too) */
    p.n = 0;
    str0(&p, g_command);
    op(&p, OP_INST);
    text(&p, "os\nsystem\n.");
    assert_blocked(&p, "os.system", strlen("S'") + strlen(g_command) + strlen("'\n"), OP_INST, "INST without MARK");
    /* (an allowed class without its MARK is still malformed) */
    ck_assert_int_eq(tst_load_pickle(TST_PKL("i__builtin__\nset\n."), NULL, 0, NULL, NULL, NULL), CKPT_ERR_PICKLE);
    /* the storage type inside a persistent id is a global like any other */
    p.n = 0;
    BYTES(&p, "\x80\x02(X\x07\x00\x00\x00" "storage");
    global(&p, "os", "system");
    BYTES(&p, "X\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x01" "tQ.");
    assert_blocked(&p, "os.system", 15, OP_GLOBAL, "a global in a persistent id");
    ck_assert(!marker_exists());
}
END_TEST

/* Names whose only use is running code can never be allowed, even on request; adding is all-or-nothing. */
START_TEST(dangerous_names_cannot_be_allowed)
{
    static const char *const never[] = {
        "os.system", "builtins.eval", "posix.system", "subprocess.Popen", "builtins.exec", "builtins.getattr",
        "nt.system", "builtins.__import__", "functools.partial", "torch.load", "sys.modules",
        "subprocess.run", "importlib.import_module", "os.path.join",
    };
    ckpt_registry *reg = ckpt_registry_new(0);
    ckpt_error *err = ckpt_error_new();
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        ck_assert_msg(ckpt_registry_add_safe_globals(reg, &never[i], 1, err) == CKPT_ERR_INVALID_ARG, "%s was allowed",
                      never[i]);
        ck_assert_ptr_nonnull(strstr(ckpt_error_message(err), "can never be allowed"));
    }
    const char *mixed[] = {"argparse.Namespace", "os.system"};
    ck_assert_int_eq(ckpt_registry_add_safe_globals(reg, mixed, 2, err), CKPT_ERR_INVALID_ARG);
    ck_assert(!ckpt_registry_is_allowed(reg, "argparse", "Namespace"));
    ck_assert(!ckpt_registry_is_allowed(reg, "os", "system"));
    /* even a registry the caller built cannot make the payloads load */
    ck_assert_int_eq(ckpt_registry_add_safe_globals(reg, mixed, 1, err), CKPT_OK);
    ckpt_load_options *o = ckpt_load_options_new();
    ckpt_load_options_set_registry(o, reg);
    pk p;
    size_t at;
    uint8_t opc;
    for (size_t t = 0; t < N_TARGETS; t++) {
        build(&p, V_GLOBAL_REDUCE, targets[t].module, targets[t].name, &at, &opc);
        ck_assert_int_eq(tst_load_pickle(p.b, p.n, NULL, 0, o, NULL, err), CKPT_ERR_BLOCKED);
        ck_assert_str_eq(ckpt_error_global(err), targets[t].global);
    }
    ckpt_load_options_free(o);
    ckpt_error_free(err);
    ckpt_registry_free(reg);
    ck_assert(!marker_exists());
}
END_TEST

/*
 * The payload is real: CPython's pickle runs it and creates the marker file (when /usr/bin/python3 is
 * there), while libckpt, given the same bytes, refuses them and the file does not appear.
 */
START_TEST(payload_is_real_but_inert)
{
    pk p;
    size_t at;
    uint8_t opc;
    build(&p, V_GLOBAL_REDUCE, "os", "system", &at, &opc);
    ck_assert_int_eq(tst_load_pickle(p.b, p.n, NULL, 0, NULL, NULL, NULL), CKPT_ERR_BLOCKED);
    ck_assert_msg(!marker_exists(), "libckpt ran the payload");
    if (access("/usr/bin/python3", X_OK) != 0) {
        printf("SKIP: /usr/bin/python3 is absent; the payload was not shown to run under Python\n");
        return;
    }
    char pkl_path[600];
    snprintf(pkl_path, sizeof pkl_path, "%s.pkl", g_marker);
    FILE *f = fopen(pkl_path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p.b, 1, p.n, f), p.n);
    fclose(f);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl("/usr/bin/python3", "python3", "-c", "import pickle,sys; pickle.load(open(sys.argv[1],'rb'))", pkl_path,
              (char *)NULL);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    unlink(pkl_path);
    ck_assert_msg(marker_exists(), "control failed: Python did not run the payload");
    unlink(g_marker);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("security");
    TCase *tc = tcase_create("payloads");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, payload_refused, 0, (int)(N_TARGETS * V_COUNT));
    tcase_add_test(tc, python2_names_normalised);
    tcase_add_test(tc, dotted_names_refused);
    tcase_add_test(tc, refused_before_anything_else);
    tcase_add_test(tc, dangerous_names_cannot_be_allowed);
    tcase_add_test(tc, payload_is_real_but_inert);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tst_run(suite()); }
