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
ckpt_status ck_load_tar(ckpt_checkpoint *c, const uint8_t *data, size_t len, const ckpt_load_options *opts,
                        bool borrowable, ckpt_error *err);
/* Lets u read a TorchScript data.pkl as data: __torch__.* classes and torch.jit._pickle helpers (§7). */
void ck_torchscript_unpickler(ckpt_checkpoint *c, ck_unpickler *u);

/* A module-class persistent id of the legacy and tar formats: refused unless model mode accepts it. */
ckpt_status ck_module_pid(ckpt_checkpoint *c, ckpt_value *cls, ckpt_value **out, ckpt_error *err);
/* Text of a str or bytes node (persistent ids may carry either), or NULL. */
const char *ck_text_of(const ckpt_value *v);

#endif
