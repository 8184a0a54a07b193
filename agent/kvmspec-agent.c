/*
 * kvmspec-agent: a backend for the kvmspec stdio protocol (version 2) that performs every operation
 * with real system calls on the machine it runs on. It knows nothing about particular ioctls: a
 * request names the ioctl number and describes its argument (an integer, a pointer to a buffer, or a
 * struct image whose pointer fields are patched with real addresses), and the answer carries the
 * return value, errno and the bytes the kernel left behind.
 *
 * JSON lines on stdin/stdout; diagnostics on stderr. Integer code only: on ppc64 a KVM_RUN that ends
 * in a hypercall exit has been seen to return with callee-saved floating-point/vector registers
 * zeroed, so no floating-point value may live across an ioctl.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "json.h"

#if defined(__aarch64__)
#define AGENT_ARCH "arm64"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define AGENT_ARCH "ppc64le"
#elif defined(__x86_64__)
#define AGENT_ARCH "x86_64"
#elif defined(__s390x__)
#define AGENT_ARCH "s390x"
#else
#error "kvmspec-agent supports arm64, ppc64le, x86_64 and s390x"
#endif

/* The protocol channel, moved away from fds 0/1 so a handle a case invents can never be the channel. */
static int channel_in = -1, channel_out = -1;
static long page_size;
/* A PROT_NONE page: the address behind every `invalid` pointer target. */
static uint8_t *invalid_page;

struct buffer {
	long long id;     /* the harness's name for it */
	uint8_t *base;    /* first usable byte */
	size_t size;      /* usable bytes */
	void *mapping;    /* what to munmap */
	size_t mapping_length;
	int readonly;
};
/* The buffers in use, in no order: a case holds a handful, so a linear search is the fastest lookup. */
static struct buffer *buffers;
static size_t buffer_count, buffer_capacity;

/*
 * Closes and unmappings answered before they are done: a case's release is answered at once and carried
 * out while the harness moves on, instead of the harness waiting for a VM's teardown in emulation. They
 * run before any other request is handled, so the kernel sees every call in the order it was sent; and
 * neither can fail once its request has been checked.
 */
struct deferred {
	int fd;           /* >= 0: close it; otherwise munmap the mapping */
	void *mapping;
	size_t length;
};
static struct deferred *deferred;
static size_t deferred_count, deferred_capacity;

/* An operation that cannot be carried out: reported as {"ok":false,"error":{"kind":"backend",...}}. */
static const char *failure;
static char failure_text[160];

static int fail(const char *format, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *format, ...)
{
	va_list args;
	va_start(args, format);
	vsnprintf(failure_text, sizeof(failure_text), format, args);
	va_end(args);
	failure = failure_text;
	return -1;
}

static const char *errno_name(int err)
{
	static char fallback[16];
	const char *name = strerrorname_np(err);
	if (name)
		return name;
	snprintf(fallback, sizeof(fallback), "E%d", err);
	return fallback;
}

static size_t round_up(size_t value, size_t to)
{
	return (value + to - 1) / to * to;
}

/* --- reading request fields ---------------------------------------------------------------- */

static int get_int(const struct json *request, const char *key, long long min, long long max, long long *value)
{
	const struct json *v = json_member(request, key);
	if (!v || v->type != JSON_INT)
		return fail("'%s' must be an integer", key);
	if (v->integer < min || v->integer > max)
		return fail("'%s' is out of range", key);
	*value = v->integer;
	return 0;
}

static int get_size(const struct json *request, const char *key, size_t *value)
{
	long long v = 0;
	if (get_int(request, key, 0, (long long)1 << 53, &v) < 0)
		return -1;
	*value = (size_t)v;
	return 0;
}

/* A u64 written as "0x..." (a leading '-' means the two's complement). */
static int get_u64(const struct json *request, const char *key, uint64_t *value)
{
	const struct json *v = json_member(request, key);
	const char *s;
	char *end;
	int negative;
	if (!v || v->type != JSON_STRING)
		return fail("'%s' must be a hex string", key);
	s = v->string;
	negative = *s == '-';
	s += negative;
	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || !s[2])
		return fail("'%s' must start with 0x", key);
	errno = 0;
	*value = strtoull(s + 2, &end, 16);
	if (*end || errno || strlen(s + 2) > 16)
		return fail("'%s' is not a 64-bit hex number", key);
	if (negative)
		*value = 0 - *value;
	return 0;
}

/* Decodes a base64 member; *bytes is malloc'd (or NULL when the member is absent and optional). */
static int get_base64(const struct json *request, const char *key, int optional, uint8_t **bytes, size_t *length)
{
	const struct json *v = json_member(request, key);
	*bytes = NULL;
	*length = 0;
	if (!v && optional)
		return 0;
	if (!v || v->type != JSON_STRING)
		return fail("'%s' must be a base64 string", key);
	*bytes = base64_decode(v->string, v->length, length);
	return *bytes ? 0 : fail("'%s' is not valid base64", key);
}

static int get_fd(const struct json *request, int *fd)
{
	long long handle = 0;
	if (get_int(request, "handle", 0, 0x7fffffff, &handle) < 0)
		return -1;
	/* The channel is not a handle; answering EBADF is what an unknown fd would give. */
	*fd = handle == channel_in || handle == channel_out ? -1 : (int)handle;
	return 0;
}

static struct buffer *find_buffer(long long id)
{
	for (size_t i = 0; i < buffer_count; i++)
		if (buffers[i].id == id)
			return &buffers[i];
	return NULL;
}

static int get_buffer(const struct json *request, struct buffer **buffer)
{
	long long id;
	if (get_int(request, "buffer", 0, 0x7fffffff, &id) < 0)
		return -1;
	*buffer = find_buffer(id);
	return *buffer ? 0 : fail("unknown buffer %lld", id);
}

/* The id the harness gives a new buffer (alloc, mmap): no buffer in use may have it. */
static int get_new_buffer_id(const struct json *request, long long *id)
{
	if (get_int(request, "buffer", 0, 0x7fffffff, id) < 0)
		return -1;
	return find_buffer(*id) ? fail("buffer %lld is already in use", *id) : 0;
}

static int check_range(const struct buffer *buffer, size_t offset, size_t length)
{
	if (offset > buffer->size || length > buffer->size - offset)
		return fail("range %zu+%zu is outside the buffer's %zu bytes", offset, length, buffer->size);
	return 0;
}

/* --- deferred work ------------------------------------------------------------------------ */

static void carry_out(const struct deferred *work)
{
	if (work->fd >= 0)
		close(work->fd);
	else
		munmap(work->mapping, work->length);
}

static void run_deferred(void)
{
	for (size_t i = 0; i < deferred_count; i++)
		carry_out(&deferred[i]);
	deferred_count = 0;
}

/* Queues a close or munmap; without memory for the queue, it and everything before it are done now. */
static void defer(struct deferred work)
{
	if (deferred_count == deferred_capacity) {
		size_t capacity = deferred_capacity ? deferred_capacity * 2 : 16;
		struct deferred *grown = realloc(deferred, capacity * sizeof(*deferred));
		if (!grown) {
			run_deferred();
			carry_out(&work);
			return;
		}
		deferred = grown;
		deferred_capacity = capacity;
	}
	deferred[deferred_count++] = work;
}

/* --- buffers ------------------------------------------------------------------------------- */

static int add_buffer(struct buffer buffer)
{
	if (buffer_count == buffer_capacity) {
		size_t capacity = buffer_capacity ? buffer_capacity * 2 : 16;
		struct buffer *grown = realloc(buffers, capacity * sizeof(*buffers));
		if (!grown)
			return fail("out of memory");
		buffers = grown;
		buffer_capacity = capacity;
	}
	buffers[buffer_count++] = buffer;
	return 0;
}

static int op_alloc(const struct json *request)
{
	size_t size, alignment = (size_t)page_size, length, init_length, mapping_length;
	const struct json *readonly_flag = json_member(request, "readonly");
	int readonly = readonly_flag && readonly_flag->type == JSON_BOOL && readonly_flag->integer;
	uint8_t *init, *base;
	void *mapping;
	long long id;

	if (get_new_buffer_id(request, &id) < 0 || get_size(request, "size", &size) < 0)
		return -1;
	if (json_member(request, "alignment")) {
		long long a;
		if (get_int(request, "alignment", 1, 1 << 30, &a) < 0)
			return -1;
		if (a & (a - 1))
			return fail("alignment %lld is not a power of two", a);
		if ((size_t)a > alignment)
			alignment = (size_t)a;
	}
	if (get_base64(request, "init", 1, &init, &init_length) < 0)
		return -1;
	if (init_length > size) {
		free(init);
		return fail("init has %zu bytes, more than the size %zu", init_length, size);
	}
	/* Whole pages, so read-only protection covers exactly this buffer; extra room to align. */
	length = round_up(size ? size : 1, (size_t)page_size);
	mapping_length = length + (alignment > (size_t)page_size ? alignment : 0);
	mapping = mmap(NULL, mapping_length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mapping == MAP_FAILED) {
		free(init);
		return fail("mmap of %zu bytes failed: %s", mapping_length, errno_name(errno));
	}
	base = (uint8_t *)round_up((uintptr_t)mapping, alignment);
	if (init)
		memcpy(base, init, init_length);
	free(init);
	if (readonly && mprotect(base, length, PROT_READ) < 0) {
		munmap(mapping, mapping_length);
		return fail("mprotect failed: %s", errno_name(errno));
	}
	if (add_buffer((struct buffer){ id, base, size, mapping, mapping_length, readonly }) < 0) {
		munmap(mapping, mapping_length);
		return -1;
	}
	return 0;
}

static int op_mmap(const struct json *request)
{
	size_t length, offset;
	int fd;
	void *mapping;
	long long id;
	if (get_new_buffer_id(request, &id) < 0 || get_fd(request, &fd) < 0 ||
	    get_size(request, "length", &length) < 0 || get_size(request, "offset", &offset) < 0)
		return -1;
	mapping = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)offset);
	if (mapping == MAP_FAILED)
		return fail("mmap of handle %d failed: %s", fd, errno_name(errno));
	if (add_buffer((struct buffer){ id, mapping, length, mapping, length, 0 }) < 0) {
		munmap(mapping, length);
		return -1;
	}
	return 0;
}

static int op_free(const struct json *request)
{
	struct buffer *buffer;
	if (get_buffer(request, &buffer) < 0)
		return -1;
	/* Always unmapped, never kept for the next alloc: docs/qemu-backends.md says why. */
	defer((struct deferred){ -1, buffer->mapping, buffer->mapping_length });
	*buffer = buffers[--buffer_count];
	return 0;
}

static int op_read(const struct json *request, struct json_out *out)
{
	struct buffer *buffer;
	size_t offset, length;
	if (get_buffer(request, &buffer) < 0 || get_size(request, "offset", &offset) < 0 ||
	    get_size(request, "length", &length) < 0 || check_range(buffer, offset, length) < 0)
		return -1;
	out_raw(out, ",\"data\":");
	out_base64(out, buffer->base + offset, length);
	return 0;
}

/* Sets the protection of the pages holding a read-only buffer. */
static int protect(struct buffer *buffer, int prot)
{
	if (mprotect(buffer->base, round_up(buffer->size ? buffer->size : 1, (size_t)page_size), prot) < 0)
		return fail("mprotect failed: %s", errno_name(errno));
	return 0;
}

static int op_write(const struct json *request)
{
	struct buffer *buffer;
	size_t offset, length;
	uint8_t *data;
	int result = -1;
	if (get_buffer(request, &buffer) < 0 || get_size(request, "offset", &offset) < 0 ||
	    get_base64(request, "data", 0, &data, &length) < 0)
		return -1;
	/* The harness may fill a read-only buffer; only the kernel's writes must fault. */
	if (check_range(buffer, offset, length) == 0 &&
	    (!buffer->readonly || protect(buffer, PROT_READ | PROT_WRITE) == 0)) {
		memcpy(buffer->base + offset, data, length);
		result = buffer->readonly ? protect(buffer, PROT_READ) : 0;
	}
	free(data);
	return result;
}

/* --- open / close / ioctl ------------------------------------------------------------------ */

static int op_open(const struct json *request, struct json_out *out)
{
	const struct json *path = json_member(request, "path");
	int fd;
	if (!path || path->type != JSON_STRING || !path->length)
		return fail("'path' must be a non-empty string");
	fd = open(path->string, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		out_raw(out, ",\"errno\":");
		out_string(out, errno_name(errno));
	} else {
		out_raw(out, ",\"handle\":");
		out_int(out, fd);
	}
	return 0;
}

static int op_close(const struct json *request)
{
	int fd;
	if (get_fd(request, &fd) < 0)
		return -1;
	if (fd >= 0)
		defer((struct deferred){ fd, NULL, 0 });
	return 0;
}

/* A pointer target resolved to an address; `span` is the buffer range reported back, if any. */
struct target {
	uintptr_t address;
	const uint8_t *span;
	size_t span_length;
};

static int resolve_target(const struct json *target, struct target *resolved)
{
	const struct json *kind = json_member(target, "kind");
	*resolved = (struct target){ 0, NULL, 0 };
	if (!kind || kind->type != JSON_STRING)
		return fail("a pointer target needs a 'kind'");
	if (strcmp(kind->string, "null") == 0)
		return 0;
	if (strcmp(kind->string, "invalid") == 0) {
		resolved->address = (uintptr_t)invalid_page;
		return 0;
	}
	if (strcmp(kind->string, "buffer") == 0) {
		struct buffer *buffer;
		size_t offset, length;
		if (get_buffer(target, &buffer) < 0 || get_size(target, "offset", &offset) < 0 ||
		    get_size(target, "length", &length) < 0 || check_range(buffer, offset, length) < 0)
			return -1;
		resolved->address = (uintptr_t)(buffer->base + offset);
		resolved->span = buffer->base + offset;
		resolved->span_length = length;
		return 0;
	}
	return fail("unknown pointer target kind '%s'", kind->string);
}

/* Struct images get this much zeroed room behind them, so a short image never exposes other memory. */
#define IMAGE_SLACK 4096

struct patch {
	size_t offset;
	uint8_t original[8];
	uintptr_t address;
};

static int op_ioctl(const struct json *request, struct json_out *out)
{
	const struct json *arg = json_member(request, "arg"), *value;
	uint64_t number, int_arg;
	unsigned long argument = 0;
	struct target *targets = NULL;
	struct patch *patches = NULL;
	size_t target_count = 0, image_length = 0;
	uint8_t *image = NULL;
	int fd, result = -1;
	long ret;
	int saved_errno;

	if (get_fd(request, &fd) < 0 || get_u64(request, "request", &number) < 0)
		return -1;
	if (!arg || arg->type != JSON_OBJECT || !arg->child || arg->child->next)
		return fail("'arg' must be an object with exactly one of int, pointer, struct");
	value = arg->child;

	if (strcmp(value->key, "int") == 0) {
		if (get_u64(arg, "int", &int_arg) < 0)
			return -1;
		argument = (unsigned long)int_arg;
	} else if (strcmp(value->key, "pointer") == 0) {
		targets = calloc(1, sizeof(*targets));
		if (!targets)
			return fail("out of memory");
		if (resolve_target(value, &targets[0]) < 0)
			goto out;
		target_count = 1;
		argument = targets[0].address;
	} else if (strcmp(value->key, "struct") == 0) {
		const struct json *pointers = json_member(value, "pointers"), *p;
		size_t count = 0, decoded_length;
		uint8_t *decoded;
		if (!pointers || pointers->type != JSON_ARRAY)
			return fail("'struct' needs a 'pointers' array");
		for (p = pointers->child; p; p = p->next)
			count++;
		if (get_base64(value, "image", 0, &decoded, &decoded_length) < 0)
			return -1;
		image_length = decoded_length;
		image = calloc(1, image_length + IMAGE_SLACK);
		targets = calloc(count ? count : 1, sizeof(*targets));
		patches = calloc(count ? count : 1, sizeof(*patches));
		if (!image || !targets || !patches) {
			free(decoded);
			fail("out of memory");
			goto out;
		}
		memcpy(image, decoded, image_length);
		free(decoded);
		for (p = pointers->child; p; p = p->next, target_count++) {
			struct patch *patch = &patches[target_count];
			if (get_size(p, "offset", &patch->offset) < 0 ||
			    resolve_target(json_member(p, "target"), &targets[target_count]) < 0)
				goto out;
			if (patch->offset > image_length || image_length - patch->offset < 8) {
				fail("pointer at offset %zu does not fit the %zu-byte image", patch->offset, image_length);
				goto out;
			}
			/* Native byte order is the arch's: the agent runs on the machine it tests. */
			patch->address = targets[target_count].address;
			memcpy(patch->original, image + patch->offset, 8);
			memcpy(image + patch->offset, &patch->address, 8);
		}
		argument = (unsigned long)(uintptr_t)image;
	} else {
		return fail("unknown argument kind '%s'", value->key);
	}

	if (fd < 0) {
		ret = -1;
		saved_errno = EBADF;
	} else {
		ret = ioctl(fd, (unsigned long)number, argument);
		saved_errno = errno;
	}

	out_raw(out, ",\"ret\":");
	out_int(out, ret);
	out_raw(out, ",\"errno\":");
	if (ret == -1)
		out_string(out, errno_name(saved_errno));
	else
		out_raw(out, "null");
	if (image) {
		/* Put back what the case sent, unless the kernel wrote something of its own there. */
		for (size_t i = 0; i < target_count; i++)
			if (memcmp(image + patches[i].offset, &patches[i].address, 8) == 0)
				memcpy(image + patches[i].offset, patches[i].original, 8);
		out_raw(out, ",\"image\":");
		out_base64(out, image, image_length);
	}
	out_raw(out, ",\"spans\":[");
	for (size_t i = 0, emitted = 0; i < target_count; i++) {
		if (!targets[i].span)
			continue;
		if (emitted++)
			out_raw(out, ",");
		out_base64(out, targets[i].span, targets[i].span_length);
	}
	out_raw(out, "]");
	result = 0;
out:
	free(image);
	free(targets);
	free(patches);
	return result;
}

/* --- the loop ------------------------------------------------------------------------------ */

/* Writes the lines gathered in `out` and empties it. */
static void send_lines(struct json_out *out)
{
	size_t done = 0;
	while (done < out->length) {
		ssize_t n = write(channel_out, out->data + done, out->length - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "kvmspec-agent: the channel is gone (%s)\n", errno_name(errno));
			exit(1);
		}
		done += (size_t)n;
	}
	out->length = 0;
	out->data[0] = '\0';
}

static void send_handshake(struct json_out *line)
{
	struct utsname name;
	char version[32] = "unknown";
	int major, minor;
	if (uname(&name) == 0 && sscanf(name.release, "%d.%d", &major, &minor) == 2)
		snprintf(version, sizeof(version), "%d.%d", major, minor);
	out_raw(line, "{\"kvmspec\":\"backend\",\"protocol\":2,\"profile\":{\"arch\":\"" AGENT_ARCH "\","
		      "\"implementation\":\"kvmspec-agent\",\"version\":");
	out_string(line, version);
	out_raw(line, ",\"revisions\":[\"upstream\"]}}\n");
	send_lines(line);
}

/* Handles one request line, adding its response line to `line`; returns 0 when asked to shut down. */
static int handle_line(char *text, struct json_out *line)
{
	const char *parse_error;
	struct json *request = json_parse(text, &parse_error);
	const struct json *seq = json_member(request, "seq"), *op = json_member(request, "op");
	int keep_going = 1, status = -1;
	size_t start = line->length;

	failure = NULL;
	out_raw(line, "{\"seq\":");
	if (seq && seq->type == JSON_INT)
		out_int(line, seq->integer);
	else
		out_raw(line, "null");
	out_raw(line, ",\"ok\":true");

	/* Whatever is deferred happens before anything else the harness asks for. */
	if (!op || op->type != JSON_STRING ||
	    (strcmp(op->string, "close") != 0 && strcmp(op->string, "free") != 0))
		run_deferred();
	if (!request)
		fail("malformed request: %s", parse_error);
	else if (!seq || seq->type != JSON_INT)
		fail("the request has no integer 'seq'");
	else if (!op || op->type != JSON_STRING)
		fail("the request has no 'op'");
	else if (strcmp(op->string, "open") == 0)
		status = op_open(request, line);
	else if (strcmp(op->string, "ioctl") == 0)
		status = op_ioctl(request, line);
	else if (strcmp(op->string, "close") == 0)
		status = op_close(request);
	else if (strcmp(op->string, "alloc") == 0)
		status = op_alloc(request);
	else if (strcmp(op->string, "mmap") == 0)
		status = op_mmap(request);
	else if (strcmp(op->string, "read") == 0)
		status = op_read(request, line);
	else if (strcmp(op->string, "write") == 0)
		status = op_write(request);
	else if (strcmp(op->string, "free") == 0)
		status = op_free(request);
	else if (strcmp(op->string, "shutdown") == 0) {
		status = 0;
		keep_going = 0;
	} else {
		fail("unknown op '%s'", op->string);
	}

	if (status < 0) {
		/* Replace whatever was written after the seq with the failure. */
		char *ok = strstr(line->data + start, ",\"ok\":true");
		line->length = (size_t)(ok - line->data);
		line->data[line->length] = '\0';
		out_raw(line, ",\"ok\":false,\"error\":{\"kind\":\"backend\",\"message\":");
		out_string(line, failure ? failure : "operation failed");
		out_raw(line, "}");
	}
	out_raw(line, "}\n");
	json_free(request);
	return keep_going;
}

int main(void)
{
	struct json_out line = { 0 };
	char *input = NULL;
	size_t used = 0, capacity = 0;
	int devnull;

	signal(SIGPIPE, SIG_IGN);
	page_size = sysconf(_SC_PAGESIZE);
	channel_in = fcntl(0, F_DUPFD_CLOEXEC, 512);
	channel_out = fcntl(1, F_DUPFD_CLOEXEC, 512);
	devnull = open("/dev/null", O_RDWR);
	invalid_page = mmap(NULL, (size_t)page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (channel_in < 0 || channel_out < 0 || devnull < 0 || invalid_page == MAP_FAILED) {
		fprintf(stderr, "kvmspec-agent: cannot set up its channel: %s\n", strerror(errno));
		return 1;
	}
	dup2(devnull, 0);
	dup2(devnull, 1);
	close(devnull);

	send_handshake(&line);
	for (;;) {
		char *newline;
		ssize_t n;
		if (capacity - used < 65536) {
			capacity = capacity ? capacity * 2 : 1 << 20;
			input = realloc(input, capacity);
			if (!input) {
				fprintf(stderr, "kvmspec-agent: out of memory for a request line\n");
				return 1;
			}
		}
		n = read(channel_in, input + used, capacity - used - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? 0 : 1;
		used += (size_t)n;
		input[used] = '\0';
		/*
		 * The answers to requests that arrived together leave together: one write, so one notification
		 * through the emulated channel instead of one per answer (a case's release is such a batch).
		 */
		while ((newline = memchr(input, '\n', used)) != NULL) {
			size_t consumed = (size_t)(newline - input) + 1;
			*newline = '\0';
			if (newline > input && !handle_line(input, &line)) {
				send_lines(&line);
				return 0;
			}
			used -= consumed;
			memmove(input, input + consumed, used + 1);
		}
		send_lines(&line);
		run_deferred();
	}
}
