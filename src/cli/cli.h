/* Subcommands of the tfswa command-line tool. Each returns the process exit status
 * (0 ok, 2 user error, 1 internal fault) and prints errors as "tfswa: <message>".
 * A subcommand whose source file is not part of the build is reported as unavailable. */
#ifndef TFSWA_CLI_H
#define TFSWA_CLI_H

#include "util/err.h"

#define TF_WEAK __attribute__((weak))
int cmd_synth(int argc, char **argv) TF_WEAK;
int cmd_train(int argc, char **argv) TF_WEAK;
int cmd_separate(int argc, char **argv) TF_WEAK;
int cmd_evaluate(int argc, char **argv) TF_WEAK;
int cmd_bench(int argc, char **argv) TF_WEAK;
int cmd_plan(int argc, char **argv) TF_WEAK;
int cmd_demo(int argc, char **argv) TF_WEAK;
int cmd_index(int argc, char **argv) TF_WEAK;
int cmd_stream(int argc, char **argv) TF_WEAK;

/* bench targets, dispatched by cmd_bench */
int bench_data(int argc, char **argv) TF_WEAK;
int bench_model(int argc, char **argv) TF_WEAK;
int bench_step(int argc, char **argv) TF_WEAK;
int bench_separate(int argc, char **argv) TF_WEAK;
int bench_metrics(int argc, char **argv) TF_WEAK;
int bench_stft(int argc, char **argv) TF_WEAK;
int bench_memory(int argc, char **argv) TF_WEAK;
int bench_stream(int argc, char **argv) TF_WEAK;
int bench_faults(int argc, char **argv) TF_WEAK;

/* Prints the events of tf_train_run on stderr (cmd_train.c); user: const int *, nonzero
 * when stderr is a terminal (the progress line rewrites itself), or NULL. */
struct tf_train_event;
void cli_print_train_event(void *user, const struct tf_train_event *e);

/* When argv[1..] holds --help or -h: print usage to stdout and return 1 (the subcommand
 * then exits 0); else 0. */
int cli_wants_help(int argc, char **argv, const char *usage);

/* Print "tfswa: <tf_errmsg()>" to stderr and return st as exit status. */
int cli_fail(tf_status st);

/* --precision fp32|bf16|auto and --backend dnnl|ref (NULL: auto, dnnl) -> the
 * TFSWA_PRECISION_* / TFSWA_BACKEND_* values; TF_EUSER naming the flag and the value. */
tf_status cli_precision_flags(const char *precision, const char *backend, int *p, int *b);
/* --device cpu|cuda|cuda:N (given: the flag's value as written, NULL: absent = cpu): parse
 * it and open the device (util/device.h); then, when `task` is not NULL, refuse a CUDA
 * device for that task (not implemented on CUDA yet). TF_EUSER, one line starting
 * "--device <given>: " for a bad value, a build without CUDA, no usable CUDA device, and
 * a task that does not run on CUDA yet. */
/* the --device of `tfswa bench` ("cpu" when not given), for the benches that run on it */
extern const char *cli_bench_device;
tf_status cli_device_open(const char *given, const char *task);

/* At the start of separate / evaluate, on stderr: "compute: <desc>" (desc: tfswa_describe),
 * and when bf16 was asked for where it is not native, one line saying fp32 is used. */
void cli_precision_report(int precision, int backend, const char *desc);

/* Simple flag access for subcommands with few options. Flags may be written with dashes
 * or underscores and as "--k v" or "--k=v". cli_flag_* mark the flags they consume;
 * cli_check_unused reports the first flag nobody consumed (TF_EUSER). Positional
 * arguments (not starting with "--", not a flag's value) are returned by cli_positional. */
typedef struct {
    int argc;
    char **argv;
    unsigned char used[256];
} cli_args;
void cli_args_init(cli_args *a, int argc, char **argv);
/* string value of --name, or NULL if absent; TF_EUSER via *st when the value is missing */
const char *cli_flag_str(cli_args *a, const char *name, tf_status *st);
/* all values of a repeatable flag (e.g. --config); returns count, fills up to max */
int cli_flag_all(cli_args *a, const char *name, const char **out, int max, tf_status *st);
/* boolean: --name (1), --no_name (0), --name=true/false; returns def if absent */
int cli_flag_bool(cli_args *a, const char *name, int def, tf_status *st);
long long cli_flag_int(cli_args *a, const char *name, long long def, tf_status *st);
double cli_flag_double(cli_args *a, const char *name, double def, tf_status *st);
int cli_positional(cli_args *a, const char **out, int max);
tf_status cli_check_unused(cli_args *a);
/* "8GiB", "512 MiB", "2.5G", "8e9" (bytes), KB/MB/GB decimal: *out bytes; TF_EUSER naming
 * flag and value otherwise. */
/* The output folder: "-o DIR" or "--out DIR" (the last one given), NULL if neither. */
const char *cli_flag_out(cli_args *a, tf_status *st);
tf_status cli_parse_bytes(const char *flag, const char *s, size_t *out);

#endif
