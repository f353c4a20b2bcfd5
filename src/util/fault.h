/* Fault points for `tfswa bench faults` (src/cli/bench_faults.c): a test hook, off unless
 * the environment asks for it, that changes nothing a user sees.
 *
 * The training loop and the checkpoint writer call tf_fault_point at the moments a crash
 * matters: the start of a step, the start and end of a validation, and the stages of a
 * checkpoint write (begin, model written into the temporary folder, train state half
 * written, temporary folder complete, between the two renames of the swap, after the
 * swap with the previous checkpoint not yet removed, end). Read once, at the first call:
 *   TFSWA_FAULT_MARKS=1   each point writes one line to stderr (one write(2), unbuffered):
 *                         "tfswa-fault: PHASE POINT STEP [WHAT]\n"
 *   TFSWA_FAULT_PAUSE=POINT@STEP[:WHAT]
 *                         the first time POINT is reached at a training step >= STEP (with
 *                         WHAT: at a point of that detail, e.g. the checkpoint "last") the
 *                         process writes its line (as with MARKS) and then sleeps forever,
 *                         so the bench kills it with SIGKILL exactly there.
 * Without either variable a point costs one load and a branch. */
#ifndef TFSWA_UTIL_FAULT_H
#define TFSWA_UTIL_FAULT_H
#include <stdint.h>

/* phase: "step", "validate" or "ckpt_write"; point: the stage (see above); step: the
 * training step (optimizer steps done); what: NULL or a detail (the checkpoint's name). */
void tf_fault_point(const char *phase, const char *point, int64_t step, const char *what);
/* Nonzero when either variable is set (a caller may then flush a partly written file so
 * a kill leaves exactly that on disk). */
int tf_fault_on(void);

#endif
