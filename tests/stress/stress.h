/* SPDX-License-Identifier: MIT */
/*
 * berth-stress: the seeded stress loop (project issue 8).  Shared by the
 * driver (berth_stress.c), the helpers (stress_util.c), the pump and commit
 * modes (stress_pump.c, stress_commit.c), the process and in-process session
 * modes (stress_proc.c) and the relay that stands between an rsync client
 * and its receiver (stress_relay.c).
 *
 * One iteration runs from one 64-bit seed: everything it picks (mode,
 * workload, sessions, backend, disruption, its moment, faults) comes from
 * that seed, so `berth-stress --seed S --iterations 1` replays it (the
 * moment a disruption lands depends on the scheduler as well).
 *
 * Threads: an iteration runs on the main thread plus the threads it starts
 * and joins; the watchdog thread only reads the current iteration's
 * description (under st->lock) and, on a hang, dumps all thread stacks and
 * exits.
 */
#ifndef BERTH_STRESS_H
#define BERTH_STRESS_H

/* Windows: mingw's own printf (__USE_MINGW_ANSI_STDIO), which knows %zu;
 * the format checks follow it. */
#ifdef _WIN32
#define STRESS_PRINTF gnu_printf
#else
#define STRESS_PRINTF printf
#endif

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Mode bits: what --mode selects. */
enum {
	SM_PUMP = 1,
	SM_COMMIT = 2,
	SM_PROCESS = 4,
	SM_SESSION = 8, /* in-process berth_server_run on a shared pump */
	SM_ALL = 15,
};

/* Disruption kinds, counted per kind in the report. */
enum {
	SD_NONE = 0,
	SD_CANCEL_REQ, /* pump: cancel single requests */
	SD_CANCEL_TAG, /* pump: cancel every request of a tag */
	SD_CANCEL_API, /* commit: berth_commit_cancel; session: the API hook */
	SD_ABORT_FILE, /* commit: berth_commit_file_abort mid-file */
	SD_PUMP_SHUTDOWN, /* shared pump shut down with work in flight */
	SD_KILL_CLIENT, /* SIGKILL the rsync client */
	SD_CUT_PIPE, /* the relay closes both pipes mid-stream */
	SD_SIGTERM, /* SIGTERM to berth --server */
	SD_SIGINT, /* SIGINT to berth --server */
	SD_KILL_BERTH, /* SIGKILL to berth --server, then a second push */
	SD_FAULT, /* injected pump faults (see the fault counters) */
	SD__COUNT
};

/* Injected fault kinds. */
enum {
	SF_ENOSPC_WRITE = 0,
	SF_EIO_WRITE,
	SF_EIO_READ,
	SF_EIO_FSYNC,
	SF_SHORT_WRITE,
	SF_SHORT_READ,
	SF_RENAME,
	SF__COUNT
};

/* Violation kinds (also the names --xfail accepts). */
enum {
	SV_CONTENT = 0, /* a final name is neither old nor new content */
	SV_TEMP, /* temp files left */
	SV_FD, /* fd count above baseline */
	SV_MEM, /* heap above baseline */
	SV_ONCE, /* a request completed twice, or never */
	SV_COUNT, /* pump submitted != completed */
	SV_UNDISTURBED, /* an undisturbed session did not end correctly */
	SV_RESULT, /* a wrong result or exit code */
	SV_SIGNAL, /* berth died of a signal instead of exiting cleanly */
	SV_TEMP_SIGNAL, /* temp files left by a berth told SIGTERM/SIGINT */
	SV_SANITIZER, /* a berth process stopped on a sanitizer report */
	SV_ISOLATION, /* an undisturbed session on a shared pump failed
		       * while another one was disrupted */
	SV_TEMP_KILLED, /* temp files of a SIGKILLed berth still there
			 * after the next push */
	SV__COUNT
};

struct stress_opts {
	uint64_t seed;
	uint64_t iterations; /* 0: unbounded (use duration) */
	double duration; /* seconds; 0: unbounded (use iterations) */
	unsigned modes; /* SM_* */
	unsigned max_sessions; /* pump/commit/session: 1..16 */
	unsigned max_procs; /* process mode: concurrent clients */
	double iter_timeout; /* seconds per iteration before "hang" */
	unsigned xfail; /* SV_* bits counted but not fatal */
	unsigned skip[4]; /* per mode index: SD_* bits never picked */
	unsigned skip_fault[4]; /* per mode index: SF_* bits never armed */
	/* Pinned choices (-1/0: drawn as usual; the draws still happen, so
	 * everything else stays what the seed gives). */
	int force_workload; /* 0 small, 1 large(-delta), 2 mixed */
	unsigned force_sessions;
	int force_disruption; /* SD_*, if the mode has it */
	int force_fault; /* SF_*: session mode arms exactly this one */
	uint64_t force_fault_nth;
	char pins[512]; /* those options again, for the replay line */
	int verbose;
	const char *self; /* path of this program (the relay) */
	const char *berth; /* berth program for process mode */
	const char *rsync; /* rsync client */
	const char *workdir; /* scratch root */
};

struct stress_rng {
	uint64_t s;
};

struct stress_state {
	struct stress_opts o;
	pthread_mutex_t lock;
	/* The iteration now running (watchdog, messages). */
	uint64_t iter;
	uint64_t iter_seed;
	int iter_mode; /* index: pump, commit, process, session */
	char iter_desc[256];
	double iter_deadline; /* monotonic seconds; 0: idle */
	/* Process groups of this iteration's clients (watchdog kills). */
	pid_t pgids[64];
	unsigned npgids;
	/* Totals for the report. */
	uint64_t iters[16]; /* per mode bit index */
	uint64_t disruptions[SD__COUNT];
	uint64_t late; /* process disruptions that found the session over */
	double span[2][3]; /* process/session x workload: mean seconds an
			    * undisturbed client took (disruption window) */
	uint64_t faults_armed[SF__COUNT];
	uint64_t faults_fired;
	uint64_t sessions;
	uint64_t requests; /* pump requests completed */
	uint64_t files; /* files checked */
	uint64_t xfailed[SV__COUNT];
	uint64_t xfail_first_seed[SV__COUNT];
	/* Set by the current iteration's checks. */
	int violation;
	char violation_msg[1024];
};

extern const char *const stress_disruption_names[SD__COUNT];
extern const char *const stress_fault_names[SF__COUNT];
extern const char *const stress_violation_names[SV__COUNT];

/* stress_util.c: random numbers (splitmix64). */
uint64_t stress_mix(uint64_t x);
uint64_t stress_next(struct stress_rng *r);
/* Uniform in [lo, hi]. */
uint64_t stress_range(struct stress_rng *r, uint64_t lo, uint64_t hi);
/* True with probability pct/100. */
int stress_chance(struct stress_rng *r, unsigned pct);
/* A pump backend, either with even odds: the kernel queue (io_uring, or
 * the completion port on Windows) or the pool; BERTH_PUMP_POOL always in a
 * Linux build without io_uring (the draw is made anyway, so a seed replays
 * the same run otherwise). */
int stress_backend(struct stress_rng *r);
void stress_fill(void *buf, size_t len, uint64_t seed);

double stress_now(void);
void stress_sleep_us(uint64_t us);

/*
 * Record a violation of @kind for the current iteration (the first one
 * counts; --xfail kinds are tallied instead).  Thread-safe.
 */
void stress_violation(struct stress_state *st, int kind, const char *fmt, ...)
	__attribute__((format(STRESS_PRINTF, 3, 4)));
void stress_log(struct stress_state *st, const char *fmt, ...)
	__attribute__((format(STRESS_PRINTF, 2, 3)));

/* Open fds of this process (entries of /proc/self/fd). */
int stress_count_fds(void);
/* " fd=target" for every open fd, for messages. */
void stress_fd_list(char *buf, size_t len);
/* Bytes of heap in use (mallinfo2), or 0 where not meaningful. */
size_t stress_heap_bytes(void);

/* rm -rf without a shell.  Returns 0 or -errno. */
int stress_rm_rf(const char *path);
int stress_mkdirs(const char *path, mode_t mode);
/* Write @len bytes of @data at @path (created/truncated) with @mtime. */
int stress_write_file(const char *path, const void *data, size_t len,
		      mode_t mode, int64_t mtime);
/* Read a whole file; *out malloc'ed.  Returns length or -errno. */
ssize_t stress_read_file(const char *path, unsigned char **out);
/* Names starting with '.' below @dir, each passed to @cb (may be NULL). */
int stress_find_temps(const char *dir, void (*cb)(void *, const char *),
		      void *arg);

/* @d, or SD_NONE when --skip excludes it for mode index @mode, or the
 * --disruption the user pinned if the mode has it. */
int stress_filter(struct stress_state *st, int mode, int d);
/* The drawn workload / session count, or the pinned one. */
int stress_workload(struct stress_state *st, int w);
unsigned stress_sessions(struct stress_state *st, unsigned n);

/* stress_pump.c, stress_commit.c, stress_proc.c: one iteration each. */
void stress_pump_iter(struct stress_state *st, struct stress_rng *r);
void stress_commit_iter(struct stress_state *st, struct stress_rng *r);
void stress_proc_iter(struct stress_state *st, struct stress_rng *r,
		      int in_process);

/* stress_relay.c: `berth-stress --relay HOST CMD...` (a remote shell). */
int stress_relay_main(int argc, char **argv);

/* Describe the current iteration (shown with a violation or a hang). */
void stress_describe(struct stress_state *st, const char *fmt, ...)
	__attribute__((format(STRESS_PRINTF, 2, 3)));

#endif /* BERTH_STRESS_H */
