/* The baseline for the linux backend: the same ioctls in a C loop. Every request number comes from the
 * command line (the bench takes them from the spec). Prints ns per KVM_GET_ONE_REG and per
 * KVM_CHECK_EXTENSION. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>

struct one_reg {
	uint64_t id;
	uint64_t addr;
};

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 8) {
		fprintf(stderr, "usage: %s CREATE_VM CREATE_VCPU GET_ONE_REG CHECK_EXTENSION REG_ID CAP N\n", argv[0]);
		return 2;
	}
	unsigned long create_vm = strtoul(argv[1], 0, 0), create_vcpu = strtoul(argv[2], 0, 0);
	unsigned long get_one_reg = strtoul(argv[3], 0, 0), check_extension = strtoul(argv[4], 0, 0);
	uint64_t value = 0;
	struct one_reg reg = { strtoull(argv[5], 0, 0), (uint64_t)(uintptr_t)&value };
	unsigned long cap = strtoul(argv[6], 0, 0);
	long n = strtol(argv[7], 0, 0);
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm = kvm < 0 ? -1 : ioctl(kvm, create_vm, 0);
	int vcpu = vm < 0 ? -1 : ioctl(vm, create_vcpu, 0);
	if (vcpu < 0) {
		perror("setting up a vCPU");
		return 1;
	}
	if (ioctl(vcpu, get_one_reg, &reg) < 0) {
		perror("KVM_GET_ONE_REG");
		return 1;
	}
	double t0 = now_ns();
	for (long i = 0; i < n; i++)
		ioctl(vcpu, get_one_reg, &reg);
	double t1 = now_ns();
	for (long i = 0; i < n; i++)
		ioctl(kvm, check_extension, cap);
	double t2 = now_ns();
	printf("%.1f %.1f\n", (t1 - t0) / n, (t2 - t1) / n);
	return 0;
}
