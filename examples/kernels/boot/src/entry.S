/*
 * PVH entry: 32-bit protected mode to 64-bit long mode.
 *
 * PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h, and Xen's
 * docs/misc/pvh.pandoc): the loader enters at the address in the
 * XEN_ELFNOTE_PHYS32_ENTRY note, in 32-bit protected mode with paging off,
 * flat 4 GiB code and data segments, interrupts off, and ebx holding the
 * physical address of `struct hvm_start_info`.
 *
 * What this does, in order:
 *   1. zero .bss (the page tables, the stack and the statics live there);
 *   2. load our GDT (64-bit code 0x08, flat data 0x10, 32-bit code 0x18);
 *   3. identity-map the first 64 GiB with 2 MiB pages (64 page directories:
 *      RAM above the 4 GiB hole of a big machine is readable by the recovery
 *      kernel; 2 MiB pages need no CPUID check, unlike 1 GiB pages, which
 *      QEMU's default qemu64 CPU lacks); 2..4 GiB (ECAM at 0xB000_0000, the
 *      PCI hole, VT-d at 0xFED9_0000, the LAPIC/IOAPIC) is mapped uncached:
 *      PCD|PWT select PAT entry 3, UC in the power-on PAT; above 4 GiB is
 *      write-back again. Nothing here knows where RAM is: once Rust has read
 *      the memory map, paging.rs switches the 2 MiB pages of 2..4 GiB that
 *      are all RAM (q35 with less than 2.75 GiB has RAM up to 2.75 GiB) to
 *      write-back; pages that are not all RAM stay uncached;
 *   4. CR4.PAE, EFER.LME, CR0.PG: long mode; far jump to 64-bit code;
 *   5. stack, then `paranoid_boot_rust_start(start_info)` (never returns).
 *
 * `paranoid_boot_pvh_handoff(entry, start_info)` goes the other way: from long
 * mode back to 32-bit protected mode with paging off, ebx = start_info, and
 * jumps to another kernel's PVH entry.
 */

    .set XEN_ELFNOTE_PHYS32_ENTRY, 18
    .set SEL_CODE64, 0x08
    .set SEL_DATA,   0x10
    .set SEL_CODE32, 0x18
    .set MSR_EFER,   0xC0000080
    .set EFER_LME,   0x100
    .set CR0_PE,     0x1
    .set CR0_PG,     0x80000000
    .set CR4_PAE,    0x20
    /* Page-directory entry bits: present, writable, 2 MiB page. */
    .set PDE_P_W_PS, 0x83
    /* PWT | PCD: PAT entry 3, uncached. */
    .set PDE_UC,     0x18
    /* 2 MiB pages mapped uncached: 2 GiB (1024 * 2 MiB) up to 4 GiB
     * (paging.rs: UNCACHED_FROM, UNCACHED_TO, PDE_UC). */
    .set UC_FROM_PDE, 1024
    .set UC_TO_PDE,  2048
    /* Page directories (1 GiB each) and their 2 MiB entries: 64 GiB, the
     * IDENTITY_LIMIT of start_info.rs. */
    .set PD_COUNT,   64
    .set PDE_COUNT,  (PD_COUNT * 512)

/* ---- The PVH note (ELF note, name "Xen", type 18, 64-bit entry address). ---- */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4                     /* namesz: "Xen\0" */
    .long 8                     /* descsz */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .balign 4
    .quad _pvh_start
    .balign 4

/* ---- 32-bit entry. ---- */
    .section .text.paranoid_boot32, "ax"
    .code32
    .global _pvh_start
_pvh_start:
    cli
    cld
    /* esi keeps the start info pointer: rep stos uses edi, ecx, eax only. */
    mov %ebx, %esi

    /* 1. Zero .bss. */
    mov $__paranoid_bss_start, %edi
    mov $__paranoid_bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    /* 2. Our GDT; flat data segments now, CS at the far jump below. */
    lgdt paranoid_boot_gdt_ptr
    mov $SEL_DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs

    /* 3. Page tables: PML4[0] -> PDPT, PDPT[0..64] -> PD[0..64]. */
    mov $paranoid_boot_pdpt, %eax
    or $0x3, %eax
    mov %eax, paranoid_boot_pml4
    mov $paranoid_boot_pd, %eax
    or $0x3, %eax
    mov $paranoid_boot_pdpt, %edi
    xor %ecx, %ecx
0:  mov %eax, (%edi,%ecx,8)
    add $0x1000, %eax
    inc %ecx
    cmp $PD_COUNT, %ecx
    jb 0b

    /* 32768 2 MiB pages: entry i maps i * 2 MiB (low dword: bits 21..31 of
     * the address and the flags; high dword: i >> 11, bits 32.. of it). */
    mov $paranoid_boot_pd, %edi
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $PDE_P_W_PS, %eax
    cmp $UC_FROM_PDE, %ecx
    jb 2f
    cmp $UC_TO_PDE, %ecx
    jae 2f
    or $PDE_UC, %eax
2:  mov %eax, (%edi,%ecx,8)
    mov %ecx, %eax
    shr $11, %eax
    mov %eax, 4(%edi,%ecx,8)
    inc %ecx
    cmp $PDE_COUNT, %ecx
    jb 1b

    /* 4. Long mode. */
    mov $paranoid_boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $(CR0_PG | CR0_PE), %eax
    mov %eax, %cr0
    ljmp $SEL_CODE64, $paranoid_boot_long_start

/* ---- 64-bit. ---- */
    .code64
paranoid_boot_long_start:
    mov $SEL_DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    /* 5. Stack, then Rust with the start info pointer (zero-extended esi). */
    mov $paranoid_boot_stack_top, %rsp
    xor %ebp, %ebp
    mov %esi, %edi
    call paranoid_boot_rust_start
3:  cli
    hlt
    jmp 3b

/*
 * paranoid_boot_pvh_handoff(entry: u32 in edi, start_info: u32 in esi) -> !
 *
 * Leaves long mode the way the Intel SDM (vol. 3A, 9.8.5.4 "Switching out of
 * IA-32e mode") describes: switch to compatibility mode (a 32-bit code
 * segment), clear CR0.PG, clear EFER.LME, then enter the target with the PVH
 * register state. Runs from identity-mapped memory, so the instruction after
 * the paging switch is where the CPU expects it.
 */
    .global paranoid_boot_pvh_handoff
paranoid_boot_pvh_handoff:
    cli
    lgdt paranoid_boot_gdt_ptr(%rip)
    lea 4f(%rip), %rax
    push $SEL_CODE32
    push %rax
    lretq
    .code32
4:  mov $SEL_DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov %cr0, %eax
    and $0x7fffffff, %eax  /* ~CR0_PG */
    mov %eax, %cr0
    /* rdmsr/wrmsr use eax, ecx, edx: edi and esi survive. */
    mov $MSR_EFER, %ecx
    rdmsr
    and $0xfffffeff, %eax  /* ~EFER_LME */
    wrmsr
    xor %eax, %eax
    mov %eax, %cr4
    mov %eax, %cr3
    mov %esi, %ebx
    xor %esi, %esi
    xor %ebp, %ebp
    xor %esp, %esp
    jmp *%edi
    .code64

/* ---- GDT (read by lgdt in 32-bit mode: limit + low 4 bytes of base). ---- */
    .section .rodata.paranoid_boot_gdt, "a"
    .balign 16
paranoid_boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00cf92000000ffff    /* 0x10: flat 4 GiB data */
    .quad 0x00cf9a000000ffff    /* 0x18: flat 4 GiB 32-bit code */
paranoid_boot_gdt_end:
    .balign 8
paranoid_boot_gdt_ptr:
    .word paranoid_boot_gdt_end - paranoid_boot_gdt - 1
    .quad paranoid_boot_gdt

/* ---- Page tables and the boot stack (zeroed with .bss above). ---- */
    .section .bss.paranoid_boot_tables, "aw", @nobits
    .balign 4096
paranoid_boot_pml4:
    .skip 4096
paranoid_boot_pdpt:
    .skip 4096
    /* Global: paging.rs switches RAM pages of 2..4 GiB to write-back. */
    .global paranoid_boot_pd
paranoid_boot_pd:
    .skip 4096 * PD_COUNT
    .balign 16
    /* Global: a kernel's crash descriptor names its stack. */
    .global paranoid_boot_stack, paranoid_boot_stack_top
paranoid_boot_stack:
    .skip 256 * 1024
paranoid_boot_stack_top:
