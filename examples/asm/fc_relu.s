; One fully connected layer: Y = relu(X @ W + b).
; X is BATCH x K bf16, W is K x N bf16, b is N fp32, Y is BATCH x N fp32,
; all row-major in HBM. A plain, sequential schedule (the scalar unit waits
; for every step) that is easy to follow; examples/asm/matmul.s shows how to
; overlap DMA and compute.
;
; Sizes: -D BATCH=.. -D K=.. -D N=.. -D R=<MXU size>; K and N multiples of R.

.equ BATCH, 64
.equ K, 256
.equ N, 256
.equ R, 128

.equ HX, 0                          ; HBM
.equ HW, HX + BATCH * K * 2
.equ HBIAS, HW + K * N * 2
.equ HY, HBIAS + N * 4
.equ VX, 0                          ; VMEM
.equ VW, VX + BATCH * K * 2
.equ VBIAS, VW + R * R * 2
.equ VY, VBIAS + N * 4
.equ ACCB, 0x100000000              ; accumulators: BATCH rows of R fp32

.smem
dX:     .dmadesc BATCH * K * 2, 1, 0, 0
dW:     .dmadesc R * 2, R, N * 2, R * 2     ; one R x R tile of W
dB:     .dmadesc N * 4, 1, 0, 0
dY:     .dmadesc R * 4, BATCH, R * 4, N * 4 ; staged block -> columns of Y
vBias:  .vdesc BATCH, R, R * 4, R * 4, 0    ; src2 row stride 0: b for every row
vRelu:  .vdesc BATCH, R, R * 4, R * 4

.text
        li      r1, VX              ; X and b into VMEM
        li      r2, HX
        li      r3, dX
        dma     local:r1, hbm:r2, r3, signal=s1
        li      r1, VBIAS
        li      r2, HBIAS
        li      r3, dB
        dma     local:r1, hbm:r2, r3, signal=s1
        swait   s1, 2
        li      r6, ACCB            ; accumulators
        li      r8, BATCH           ; pass rows
        li      r9, K * 2           ; row stride of X in VMEM
        li      r4, R * 2           ; row stride of a weight tile
        li      r5, R               ; its rows and columns
        li      r20, 0              ; nt: column block of Y
ntloop:
        li      r21, 0              ; kt: block of the reduction
ktloop:
        muli    r2, r21, R * N * 2  ; W[kt*R][nt*R]
        muli    r3, r20, R * 2
        add     r2, r2, r3
        addi    r2, r2, HW
        li      r1, VW
        li      r3, dW
        dma     local:r1, hbm:r2, r3, signal=s2
        swait   s2
        mxu.ldw.bf16 r1, r4, r5, r5, signal=s3
        muli    r7, r21, R * 2      ; X[.., kt*R]
        beq     r21, r0, first
        mxu.mm.bf16 r6, r7, r8, r9, acc, signal=s4
        j       passed
first:
        mxu.mm.bf16 r6, r7, r8, r9, signal=s4
passed:
        swait   s3                  ; the tile buffer may be reused
        swait   s4                  ; the pass is done
        addi    r21, r21, 1
        li      r1, K / R
        blt     r21, r1, ktloop
        li      r11, VY             ; bias and ReLU on the vector unit
        muli    r12, r20, R * 4
        addi    r12, r12, VBIAS
        li      r13, vBias
        v.add.f32 r11, r6, r12, r13
        li      r13, vRelu
        v.relu.f32 r11, r11, r13, signal=s5
        muli    r2, r20, R * 4      ; Y[.., nt*R]
        addi    r2, r2, HY
        li      r3, dY
        dma     hbm:r2, local:r11, r3, wait=s5, signal=s6
        swait   s6
        addi    r20, r20, 1
        li      r1, N / R
        blt     r20, r1, ntloop
        halt
