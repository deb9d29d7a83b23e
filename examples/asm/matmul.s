; C = A @ B on every MXU of one TensorCore: bf16 inputs, fp32 accumulation,
; bf16 output. A is M x K, B is K x N, C is M x N, all row-major in HBM.
;
; The schedule (what a compiler for this chip does):
; - The M rows are split across the MXUs; every MXU multiplies by the same
;   R x R weight tile of B at each step, so one tile feeds all of them.
; - Steps go over output column blocks nt (outer) and reduction blocks kt
;   (inner). A step loads the tile B[kt][nt] into every MXU's shadow weights
;   (mxu.ldw) while the previous step's pass still runs (double-buffered
;   weights), then one pass per MXU accumulates A[rows, kt] x tile.
; - All of A must come in while the first column block computes, which needs
;   slightly more than HBM's bandwidth; so the first two column blocks are
;   interleaved (nt 0 and 1 alternate for each kt), which spreads A's fetch
;   over twice the time.
; - DMA queue 0 streams the tiles and the pieces of A a step ahead of use, in
;   the order they are needed, so the MXUs wait for data only at the start.
; - When a column block is complete, the vector unit converts it to bf16 and
;   DMA queues 1 and 2 store it while later blocks compute into the other two
;   of three accumulator buffers.
; - The last step is cut into SUBL short passes so that the result leaves the
;   chip in small pieces and the tail after the last MAC stays short.
;
; Sizes: -D M=.. -D K=.. -D N=.. -D R=<MXU size> -D NMXU=<MXUs per core>.
; Needs K, N multiples of R with K, N >= 2R, and M a multiple of NMXU * SUBA
; and of NMXU * SUBL.
;
; Semaphores: s1 tile arrived (scalar waits); s2+j pieces of A for MXU j;
; s8+j last pass of a block done; s12+j block converted; s16+j block stored
; (its accumulator and staging buffers free again).

.equ M, 1024
.equ K, 1024
.equ N, 1024
.equ R, 128
.equ NMXU, 4
.equ SUBA, 2           ; pieces of each A block while nt = 0
.equ SUBL, 8

.equ MB, M / NMXU          ; rows per MXU
.equ KT, K / R
.equ NT, N / R
.equ STEPS, NT * KT

; HBM layout
.equ HA, 0
.equ HB, HA + M * K * 2
.equ HC, HB + K * N * 2
; VMEM layout: A blocks [j][kt] of MB x R, B tiles [nt][kt] of R x R,
; C staging [buffer][j] of MB x R (bf16 throughout), three buffers
.equ ABLK, MB * R * 2
.equ BT, R * R * 2
.equ CBLK, MB * R * 2
.equ VB, 0                       ; (at 0, with dW at SMEM 0: the first DMA needs one li)
.equ VA, VB + STEPS * BT
.equ VC, VA + NMXU * KT * ABLK   ; three buffers of NMXU * CBLK
; accumulators [buffer][j] of MB rows, three buffers; a row is R fp32
.equ ACCB, 0x100000000
.equ ABUF, MB * R * 4

.smem
dW:   .dmadesc R * 2, R, N * 2, R * 2              ; tile of B -> VMEM
dA:   .dmadesc R * 2, MB / SUBA, K * 2, R * 2      ; piece of an A block
dC:   .dmadesc R * 2, MB, R * 2, N * 2             ; bf16 block -> C in HBM
dCs:  .dmadesc R * 2, MB / SUBL, R * 2, N * 2      ; piece of the last block
vC:   .vdesc MB, R, R * 2, R * 4                   ; fp32 accumulators -> bf16
vCs:  .vdesc MB / SUBL, R, R * 2, R * 4

.text
start:
        li      r25, HB             ; the first tile goes out before anything else
        dma     local:r0, hbm:r25, r0, q=0, signal=s1
        li      r19, 0              ; then the first half of A's first column
        jal     r30, first_half
        li      r6, R * 2           ; weight tile row stride
        li      r7, R               ; weight tile rows and columns
        li      r14, MB             ; pass rows
        li      r15, R * 2          ; A block row stride
        li      r16, MB / SUBA      ; rows of a pass over one piece of A
        .rept J, NMXU
        ssignal s(16 + J), 2        ; buffers 1 and 2 are free for nt = 1, 2
        .endr
        li      r21, 0              ; step

loop:
        mv      r28, r21
        jal     r29, step_coords
        mv      r22, r26            ; nt
        mv      r23, r27            ; kt
        swait   s1                  ; this step's tile is in VMEM
        muli    r5, r21, BT
        addi    r5, r5, VB
        .rept J, NMXU
        mxu.ldw.bf16 r5, r6, r7, r7, mxu=J
        .endr
        li      r1, 3               ; accumulator buffer of this block
        rem     r8, r22, r1
        muli    r8, r8, NMXU * ABUF
        li      r1, ACCB >> 32
        shli    r1, r1, 32
        add     r8, r8, r1
        muli    r12, r23, ABLK      ; A block column kt
        li      r9, KT - 1
        li      r10, NT - 1
        bne     r22, r0, later_block
        beq     r23, r0, step_first
        beq     r23, r9, step_a_last

; nt = 0: A arrives in SUBA pieces per MXU, each consumed by its own pass.
; Middle kt: accumulate.
        .rept P, SUBA
        .rept J, NMXU
        addi    r11, r8, J * ABUF + P * (MB / SUBA) * R * 4
        addi    r13, r12, VA + J * KT * ABLK + P * (MB / SUBA) * R * 2
        mxu.mm.bf16 r11, r13, r16, r15, mxu=J, acc, wait=s(2 + J)
        .endr
        .endr
        j       next

; nt = 0, kt = 0: overwrite
step_first:
        .rept P, SUBA
        .rept J, NMXU
        addi    r11, r8, J * ABUF + P * (MB / SUBA) * R * 4
        addi    r13, r12, VA + J * KT * ABLK + P * (MB / SUBA) * R * 2
        mxu.mm.bf16 r11, r13, r16, r15, mxu=J, wait=s(2 + J)
        .endr
        .endr
        j       next

; nt = 0, last kt: the last piece's pass completes the block
step_a_last:
        .rept P, SUBA - 1
        .rept J, NMXU
        addi    r11, r8, J * ABUF + P * (MB / SUBA) * R * 4
        addi    r13, r12, VA + J * KT * ABLK + P * (MB / SUBA) * R * 2
        mxu.mm.bf16 r11, r13, r16, r15, mxu=J, acc, wait=s(2 + J)
        .endr
        .endr
        .rept J, NMXU
        addi    r11, r8, J * ABUF + (SUBA - 1) * (MB / SUBA) * R * 4
        addi    r13, r12, VA + J * KT * ABLK + (SUBA - 1) * (MB / SUBA) * R * 2
        mxu.mm.bf16 r11, r13, r16, r15, mxu=J, acc, wait=s(2 + J), signal=s(8 + J)
        .endr
        j       store_block

later_block:
        beq     r23, r0, step_kt0
        bne     r23, r9, step_mid
        beq     r22, r10, step_final

; nt > 0, last kt: the block is complete when these passes are
        .rept J, NMXU
        addi    r11, r8, J * ABUF
        addi    r13, r12, VA + J * KT * ABLK
        mxu.mm.bf16 r11, r13, r14, r15, mxu=J, acc, signal=s(8 + J)
        .endr
        j       store_block

; nt > 0, kt = 0: overwrite accumulators once their previous block is stored
step_kt0:
        .rept J, NMXU
        addi    r11, r8, J * ABUF
        addi    r13, r12, VA + J * KT * ABLK
        mxu.mm.bf16 r11, r13, r14, r15, mxu=J, wait=s(16 + J)
        .endr
        j       next

step_mid:
        .rept J, NMXU
        addi    r11, r8, J * ABUF
        addi    r13, r12, VA + J * KT * ABLK
        mxu.mm.bf16 r11, r13, r14, r15, mxu=J, acc
        .endr
        j       next

; Convert the finished block to bf16 and store it: C[j*MB.., nt*R..]
store_block:
        li      r1, 3
        rem     r2, r22, r1
        muli    r2, r2, NMXU * CBLK
        addi    r2, r2, VC          ; staging buffer
        muli    r3, r22, R * 2
        li      r4, HC
        add     r3, r3, r4          ; C column block in HBM
        li      r18, vC
        li      r19, dC
        .rept J, NMXU
        addi    r11, r8, J * ABUF
        addi    r13, r2, J * CBLK
        v.mov.bf16.f32 r13, r11, r18, wait=s(8 + J), signal=s(12 + J)
        li      r4, J * MB * N * 2
        add     r4, r4, r3
        dma     hbm:r4, local:r13, r19, q=1 + J % 2, wait=s(12 + J), signal=s(16 + J)
        .endr
        j       next

; The very last step: SUBL short passes per MXU, each stored as soon as done.
step_final:
        li      r17, MB / SUBL
        .rept P, SUBL
        .rept J, NMXU
        addi    r11, r8, J * ABUF + P * (MB / SUBL) * R * 4
        addi    r13, r12, VA + J * KT * ABLK + P * (MB / SUBL) * R * 2
        mxu.mm.bf16 r11, r13, r17, r15, mxu=J, acc, signal=s(8 + J)
        .endr
        .endr
        li      r1, 3
        rem     r2, r22, r1
        muli    r2, r2, NMXU * CBLK
        addi    r2, r2, VC
        muli    r3, r22, R * 2
        li      r4, HC
        add     r3, r3, r4
        li      r18, vCs
        li      r19, dCs
        .rept P, SUBL
        .rept J, NMXU
        addi    r11, r8, J * ABUF + P * (MB / SUBL) * R * 4
        addi    r13, r2, J * CBLK + P * (MB / SUBL) * R * 2
        v.mov.bf16.f32 r13, r11, r18, wait=s(8 + J), signal=s(12 + J)
        li      r4, (J * MB + P * (MB / SUBL)) * N * 2
        add     r4, r4, r3
        dma     hbm:r4, local:r13, r19, q=1 + J % 2, wait=s(12 + J), signal=s(16 + J)
        .endr
        .endr

next:
        mv      r20, r21
        jal     r31, load_step      ; prefetch for what comes next
        addi    r21, r21, 1
        li      r1, STEPS
        blt     r21, r1, loop
        halt                        ; ends when every unit is idle

; After step r20's passes are dispatched, issues the loads that come next,
; in the order they are needed: the next step's tile (its weight load overlaps
; this step's passes), the second half of this step's pieces of A, and the
; first half of the next step's (A only while nt = 0). Uses r1..r4, r18, r19,
; r24..r30.
load_step:
        jal     r30, next_tile
        mv      r28, r20
        jal     r29, step_coords
        bne     r26, r0, ls_next
        mv      r19, r27
        jal     r30, second_half
ls_next:
        addi    r28, r20, 1
        li      r1, STEPS
        bge     r28, r1, ls_ret
        jal     r29, step_coords
        bne     r26, r0, ls_ret
        mv      r19, r27
        jal     r30, first_half
ls_ret:
        jalr    r0, r31, 0

; DMAs of the first (second) half of the pieces of A's column block r19, for
; every MXU. Uses r1..r4, r18; returns through r30.
first_half:
        muli    r2, r19, R * 2      ; A[.., kt*R]
        muli    r3, r19, ABLK
        li      r4, dA
        .rept P, SUBA / 2
        .rept J, NMXU
        li      r1, HA + (J * MB + P * (MB / SUBA)) * K * 2
        add     r1, r1, r2
        li      r18, VA + J * KT * ABLK + P * (MB / SUBA) * R * 2
        add     r18, r18, r3
        dma     local:r18, hbm:r1, r4, q=0, signal=s(2 + J)
        .endr
        .endr
        jalr    r0, r30, 0
second_half:
        muli    r2, r19, R * 2
        muli    r3, r19, ABLK
        li      r4, dA
        .rept P, SUBA - SUBA / 2
        .rept J, NMXU
        li      r1, HA + (J * MB + (P + SUBA / 2) * (MB / SUBA)) * K * 2
        add     r1, r1, r2
        li      r18, VA + J * KT * ABLK + (P + SUBA / 2) * (MB / SUBA) * R * 2
        add     r18, r18, r3
        dma     local:r18, hbm:r1, r4, q=0, signal=s(2 + J)
        .endr
        .endr
        jalr    r0, r30, 0

; The DMA of step r20 + 1's tile B[kt*R][nt*R], if there is such a step.
next_tile:
        addi    r24, r20, 1
        li      r25, STEPS
        bge     r24, r25, nt_ret
        mv      r28, r24
        jal     r29, step_coords    ; r26 = nt, r27 = kt
        muli    r25, r27, R * N * 2
        muli    r26, r26, R * 2
        add     r25, r25, r26
        li      r26, HB
        add     r25, r25, r26
        muli    r24, r24, BT
        addi    r24, r24, VB
        li      r26, dW
        dma     local:r24, hbm:r25, r26, q=0, signal=s1
nt_ret:
        jalr    r0, r30, 0

; The block coordinates of step r28: r26 = nt, r27 = kt. The first 2 * KT
; steps alternate between column blocks 0 and 1; then blocks go in order.
; Uses r25.
step_coords:
        li      r25, 2 * KT
        bge     r28, r25, sc_plain
        andi    r26, r28, 1
        shri    r27, r28, 1
        jalr    r0, r29, 0
sc_plain:
        li      r25, KT
        div     r26, r28, r25
        rem     r27, r28, r25
        jalr    r0, r29, 0
