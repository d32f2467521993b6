/* switch.c - lib/co's context switch (see co_internal.h).
 *
 * x86-64 (System V): the callee-saved state is rbx, rbp, r12-r15, the
 * stack pointer, MXCSR's control bits and the x87 control word; everything
 * else is caller-saved, so a switch that is an ordinary function call only
 * has to keep those. pm__co_switch(&from->sp, to->sp) pushes them, swaps
 * stack pointers and pops the other side's. A fresh stack is laid out as if
 * it had been switched away from just before pm__co_boot, with fn and arg
 * in r13/r12: the first switch "returns" into pm__co_boot, which calls
 * fn(arg). The frame is placed so that rsp is 16-byte aligned at boot's
 * call, as the ABI requires. Signal masks are not touched.
 *
 * aarch64 (AAPCS64): x19-x28, the frame pointer x29, the link register
 * x30, sp and the low halves of v8-v15 (d8-d15) are callee-saved; the
 * switch stores them in a 160-byte frame and returns through the loaded
 * x30. A fresh stack's frame has fn and arg in x20/x19 and pm__co_boot as
 * x30. FPCR (rounding mode) is not switched: a task that changes it must
 * restore it before it awaits.
 *
 * Other architectures: ucontext (makecontext/swapcontext). makecontext
 * only passes int arguments, so boot() gets the context's address in two
 * 32-bit halves and finds fn and arg there (the context must not move
 * between make and the first switch: it lives in the task record).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "co/co_internal.h"

#if PM__CO_ASM

void pm__co_switch(void **save_sp, void *to_sp);
void pm__co_boot(void);

void pm__co_ctx_switch(pm__co_ctx *from, pm__co_ctx *to)
{
    pm__co_switch(&from->sp, to->sp);
}

#endif

#if PM__CO_ASM && defined(__x86_64__)

__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl pm__co_switch\n"
    ".hidden pm__co_switch\n"
    ".type pm__co_switch,@function\n"
    "pm__co_switch:\n"
    "  .cfi_startproc\n"
    "  endbr64\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  subq $8, %rsp\n"
    "  stmxcsr (%rsp)\n"
    "  fnstcw 4(%rsp)\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  ldmxcsr (%rsp)\n"
    "  fldcw 4(%rsp)\n"
    "  addq $8, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    "  .cfi_endproc\n"
    ".size pm__co_switch, .-pm__co_switch\n"
    ".p2align 4\n"
    ".globl pm__co_boot\n"
    ".hidden pm__co_boot\n"
    ".type pm__co_boot,@function\n"
    "pm__co_boot:\n"
    "  .cfi_startproc\n"
    "  .cfi_undefined rip\n"     /* unwinders stop here: no caller */
    "  movq %r12, %rdi\n"
    "  callq *%r13\n"
    "  ud2\n"                    /* fn never returns */
    "  .cfi_endproc\n"
    ".size pm__co_boot, .-pm__co_boot\n");

void pm__co_ctx_make(pm__co_ctx *c, void *lo, size_t size, void (*fn)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - 80);   /* f + 64 bytes is 16-aligned */
    memset(f, 0, 80);
    uint32_t mxcsr = 0x1f80;                 /* defaults: all exceptions masked */
    uint16_t fcw = 0x037f;
    memcpy(&f[0], &mxcsr, 4);
    memcpy((char *)&f[0] + 4, &fcw, 2);
    f[3] = (uint64_t)(uintptr_t)fn;          /* r13 */
    f[4] = (uint64_t)(uintptr_t)arg;         /* r12 */
    f[7] = (uint64_t)(uintptr_t)pm__co_boot; /* return address */
    c->sp = f;
}

const char *pm__co_switch_kind(void)
{
    return "asm-x86_64";
}

#elif PM__CO_ASM && defined(__aarch64__)

__asm__(
    ".text\n"
    ".p2align 4\n"
    ".globl pm__co_switch\n"
    ".hidden pm__co_switch\n"
    ".type pm__co_switch,%function\n"
    "pm__co_switch:\n"
    "  sub sp, sp, #160\n"
    "  stp x19, x20, [sp, #0]\n"
    "  stp x21, x22, [sp, #16]\n"
    "  stp x23, x24, [sp, #32]\n"
    "  stp x25, x26, [sp, #48]\n"
    "  stp x27, x28, [sp, #64]\n"
    "  stp x29, x30, [sp, #80]\n"
    "  stp d8, d9, [sp, #96]\n"
    "  stp d10, d11, [sp, #112]\n"
    "  stp d12, d13, [sp, #128]\n"
    "  stp d14, d15, [sp, #144]\n"
    "  mov x2, sp\n"
    "  str x2, [x0]\n"
    "  mov sp, x1\n"
    "  ldp x19, x20, [sp, #0]\n"
    "  ldp x21, x22, [sp, #16]\n"
    "  ldp x23, x24, [sp, #32]\n"
    "  ldp x25, x26, [sp, #48]\n"
    "  ldp x27, x28, [sp, #64]\n"
    "  ldp x29, x30, [sp, #80]\n"
    "  ldp d8, d9, [sp, #96]\n"
    "  ldp d10, d11, [sp, #112]\n"
    "  ldp d12, d13, [sp, #128]\n"
    "  ldp d14, d15, [sp, #144]\n"
    "  add sp, sp, #160\n"
    "  ret\n"
    ".size pm__co_switch, .-pm__co_switch\n"
    ".p2align 4\n"
    ".globl pm__co_boot\n"
    ".hidden pm__co_boot\n"
    ".type pm__co_boot,%function\n"
    "pm__co_boot:\n"
    "  mov x29, #0\n"
    "  mov x30, #0\n"              /* no caller: unwinders stop here */
    "  mov x0, x19\n"
    "  blr x20\n"
    "  brk #0\n"                    /* fn never returns */
    ".size pm__co_boot, .-pm__co_boot\n");

void pm__co_ctx_make(pm__co_ctx *c, void *lo, size_t size, void (*fn)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *f = (uint64_t *)(top - 160);   /* sp 16-aligned at boot */
    memset(f, 0, 160);
    f[0] = (uint64_t)(uintptr_t)arg;         /* x19 */
    f[1] = (uint64_t)(uintptr_t)fn;          /* x20 */
    f[11] = (uint64_t)(uintptr_t)pm__co_boot; /* x30: where ret goes */
    c->sp = f;
}

const char *pm__co_switch_kind(void)
{
    return "asm-aarch64";
}

#else /* ucontext */

/* makecontext passes int arguments: the context's address in two halves. */
static void boot(unsigned lo, unsigned hi)
{
    pm__co_ctx *c = (pm__co_ctx *)(uintptr_t)((uint64_t)hi << 32 | lo);
    c->fn(c->arg);
}

void pm__co_ctx_make(pm__co_ctx *c, void *lo, size_t size, void (*fn)(void *), void *arg)
{
    uint64_t p = (uint64_t)(uintptr_t)c;
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = lo;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = NULL;
    c->fn = fn;
    c->arg = arg;
    makecontext(&c->uc, (void (*)(void))boot, 2, (unsigned)p, (unsigned)(p >> 32));
}

void pm__co_ctx_switch(pm__co_ctx *from, pm__co_ctx *to)
{
    swapcontext(&from->uc, &to->uc);
}

const char *pm__co_switch_kind(void)
{
    return "ucontext";
}

#endif
