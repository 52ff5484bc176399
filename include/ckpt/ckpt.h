/*
 * libckpt: read and write PyTorch checkpoints safely. Include this one header.
 *
 *   ckpt_error *err = ckpt_error_new();
 *   ckpt_checkpoint *ck = NULL;
 *   if (ckpt_load_file("model.pt", NULL, &ck, err) != CKPT_OK) {
 *       fprintf(stderr, "%s\n", ckpt_error_message(err));   // what, where, and how to fix it
 *   } else {
 *       const ckpt_tensor *w = ckpt_checkpoint_find_tensor(ck, "fc.weight");
 *       ...
 *       ckpt_checkpoint_free(ck);
 *   }
 *   ckpt_error_free(err);
 */
#ifndef CKPT_CKPT_H
#define CKPT_CKPT_H

#include "common.h"
#include "error.h"
#include "tensor.h"
#include "value.h"
#include "registry.h"
#include "checkpoint.h"
#include "scan.h"
#include "writer.h"
#include "model.h"

#endif
