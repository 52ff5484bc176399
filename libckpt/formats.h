/*
 * formats.h: the checkpoint formats other than the torch.save zip (checkpoint.c): the legacy stream
 * (legacy.c), the tar format of PyTorch 0.1-0.3 (tar.c), and TorchScript archives read as data
 * (torchscript.c). Each uses the same restricted VM and registry as the zip format.
 */
#ifndef CK_FORMATS_H
#define CK_FORMATS_H

#include "checkpoint_internal.h"
#include "unpickler.h"

/* True when a bare pickle's first value is the legacy magic number (a legacy stream written with a
 * pickle protocol other than 2, whose first bytes the sniffer does not know). Runs nothing. */
bool ck_legacy_probe(const uint8_t *data, size_t len);
/* torch.save before 1.6, or with _use_new_zipfile_serialization=False (docs/pytorch-format-notes.md §3.5). */
ckpt_status ck_load_legacy(ckpt_checkpoint *c, const uint8_t *data, size_t len, const ckpt_load_options *opts,
                           bool borrowable, ckpt_error *err);
/* torch.save of PyTorch 0.1-0.3: a tar of sys_info, pickle, tensors and storages (§3.6). */
enum { CK_TAR_SYS_INFO, CK_TAR_PICKLE, CK_TAR_TENSORS, CK_TAR_STORAGES, CK_TAR_COUNT };
extern const char *const ck_tar_member_names[CK_TAR_COUNT];
typedef struct ck_tar_member {
    const uint8_t *data;
    uint64_t size;
    bool present;
} ck_tar_member;
/* Reads the tar container strictly (the loader's reader); sys_info may be absent, the others may not. */
ckpt_status ck_tar_members(const uint8_t *data, size_t len, uint64_t max_members, ck_tar_member m[CK_TAR_COUNT],
                           ckpt_error *err);
/* Runs one pickle of member bytes p[0..n) at *pos (moved past its STOP); *root stays valid until the next call. */
typedef ckpt_status (*ck_tar_pickle_fn)(void *ctx, const uint8_t *p, size_t n, size_t *pos, const ckpt_value **root);
/*
 * For scan: calls `run_one` on every pickle of member `which`, in order, stepping over the raw fields
 * between them by the lengths the pickles give (the loader's layout). A storage header whose class
 * the registry does not know as a storage type leaves the element size unknown, so the walk of the
 * storages member stops there with an error. `little`: sys_info's byte order of the element counts.
 */
ckpt_status ck_tar_walk_pickles(const ck_tar_member *m, int which, bool little, ck_tar_pickle_fn run_one, void *ctx,
                                ckpt_error *err);
/* The byte order sys_info declares for storage element counts (torch 0.3 wrote them in host order). */
bool ck_tar_little_endian(const ckpt_value *sys_info);
ckpt_status ck_load_tar(ckpt_checkpoint *c, const uint8_t *data, size_t len, const ckpt_load_options *opts,
                        bool borrowable, ckpt_error *err);
/* Lets u read a TorchScript data.pkl as data: __torch__.* classes and torch.jit._pickle helpers (§7). */
void ck_torchscript_unpickler(ckpt_checkpoint *c, ck_unpickler *u);

/* A module-class persistent id of the legacy and tar formats: refused unless model mode accepts it. */
ckpt_status ck_module_pid(ckpt_checkpoint *c, ckpt_value *cls, ckpt_value **out, ckpt_error *err);
/* Text of a str or bytes node (persistent ids may carry either), or NULL. */
const char *ck_text_of(const ckpt_value *v);

#endif
