#!/usr/bin/env python3
"""Checks the index math of the BLR tensor-core kernels without a GPU (numpy only).

Part 1 replays kernels/blr_tile.cuh for one CTA exactly: the XOR-swizzled tile layout, the ldmatrix.x4
lane addressing, the mma.m16n8k16 fragment layouts (PTX ISA) and the epilogue's accumulator mapping, and
compares with A·Bᵀ; it also checks that ldmatrix phases and cp.async stores are bank-conflict free.
Part 2 replays the CTA-level logic of the two tensor-core BLR kernels against the CPU semantics of Monarch
and BLAST (engine/backend/cpu/cpu_blr.cpp), loading tiles the way TcCore::run does (each thread's
TileLoader: row pointer, swizzled offset, valid rows; the Cursor that walks k-tiles and segments by
additions only, in the order prologue + ring):
  2a block_gemm_tc_kernel: tiles, zero-fill predicates, the Monarch permuting store;
  2b blast_stage1_tc_kernel = BlastTile::run_tiles (kernels/blr_blast_tile.cuh), every CTA of a persistent
     grid (several tiles per CTA, mix buffers zeroed once): load_s (idx -> (fg, k, j), 16-byte or scalar S
     loads, s_off), the gemm hook (shfl_xor 4 + 4-byte stores of two tokens into the feature-major,
     j-swizzled 16-bit y stash), the tensor-core mix (ldmatrix .x4/.x2 .trans from the stash, .x4/.x1 from
     S, m16n8k16, the second n8 tile only for b > 8) and the z stores (16-byte or scalar, k >= b and
     tokens >= M skipped). Integer inputs keep every sum exact in fp32, so stash, S slice and z must match
     the CPU formula (with the kernel's two 16-bit roundings) bit for bit; each z element is written once,
     padding slots never. Bank conflicts: hook stores, every ldmatrix phase (also for every BM in
     16/32/64/128 and KJ 8/16, any tile), load_s stores (reported: 2- to 8-way unless b is 8 or 16).
     The tile table (and its smem comments) is parsed from kernels/blr_blast.cu. Mutants of the layout and
     lane roles at the end show that the checks can fail.
The one-launch (single-kernel) schedule simulation that used to be part 3 went with the single-launch
kernel (commit 21009d3); nothing here simulates code that no longer exists.
Run: python3 tools/blr_kernel_index_sim.py   (~20 s; prints max errors and conflict degrees; raises on a
mismatch)
"""
# Part 1: simulates blr_tile.cuh's TcCore index math for one CTA: swizzled tile layout, ldmatrix.x4 lane
# addressing, mma.m16n8k16 fragment semantics (PTX ISA), and the epilogue's C fragment mapping.
import numpy as np
rng = np.random.default_rng(0)
BK=64
def swz(row,c): return row*128 + ((c ^ (row&7))<<4)

def load_tile(rows_mat, R):  # smem as dict byte_offset->8 elements chunk
    sm = {}
    for row in range(R):
        for c in range(8):
            sm[swz(row,c)] = rows_mat[row, c*8:(c+1)*8].copy()
    return sm

def ldmatrix_x4(sm, addrs):  # addrs[lane] byte address of row (16B); returns regs[4][32 lanes] of 2 elems
    regs=[]
    for i in range(4):
        mat = [sm[addrs[8*i+r]] for r in range(8)]  # 8 rows x 8 elems
        regs.append([ (mat[t//4][2*(t%4)], mat[t//4][2*(t%4)+1]) for t in range(32)])
    return regs

def mma(c, a, b):  # c[lane][4], a regs[4][lane], b regs[2][lane]
    A = np.zeros((16,16)); B=np.zeros((16,8))
    for t in range(32):
        g, tig = t//4, t%4
        A[g, 2*tig:2*tig+2] = a[0][t]; A[g+8, 2*tig:2*tig+2] = a[1][t]
        A[g, 8+2*tig:8+2*tig+2] = a[2][t]; A[g+8, 8+2*tig:8+2*tig+2] = a[3][t]
        B[2*tig:2*tig+2, g] = b[0][t]; B[8+2*tig:8+2*tig+2, g] = b[1][t]
    D = A@B
    for t in range(32):
        g,tig=t//4,t%4
        c[t][0]+=D[g,2*tig]; c[t][1]+=D[g,2*tig+1]; c[t][2]+=D[g+8,2*tig]; c[t][3]+=D[g+8,2*tig+1]

def run(BM,BN,WM,WN,K):
    A = rng.standard_normal((BM,K)); B = rng.standard_normal((BN,K))
    WTM, WTN = BM//WM, BN//WN; MI, NI = WTM//16, WTN//8
    C = np.zeros((BM,BN))
    for warp in range(WM*WN):
        wm0 = (warp//WN)*WTM; wn0=(warp%WN)*WTN
        acc = [[[ [0.0]*4 for _ in range(32)] for _ in range(NI)] for _ in range(MI)]
        for k0 in range(0,K,BK):
            sA = load_tile(A[:,k0:k0+BK], BM); sB = load_tile(B[:,k0:k0+BK], BN)
            for kk in range(BK//16):
                a=[]; b=[None]*NI
                for mi in range(MI):
                    addrs=[swz(wm0+mi*16+(l&15), kk*2+(l>>4)) for l in range(32)]
                    a.append(ldmatrix_x4(sA, addrs))
                for nj in range(NI//2):
                    addrs=[swz(wn0+nj*16+(l&7)+((l>>4)<<3), kk*2+((l>>3)&1)) for l in range(32)]
                    r=ldmatrix_x4(sB, addrs)
                    b[2*nj]=(r[0],r[1]); b[2*nj+1]=(r[2],r[3])
                for mi in range(MI):
                    for ni in range(NI):
                        mma(acc[mi][ni], a[mi], b[ni])
        for mi in range(MI):
            for ni in range(NI):
                for lane in range(32):
                    row = wm0+mi*16+(lane>>2); col = wn0+ni*8+(lane&3)*2
                    C[row,col]=acc[mi][ni][lane][0]; C[row,col+1]=acc[mi][ni][lane][1]
                    C[row+8,col]=acc[mi][ni][lane][2]; C[row+8,col+1]=acc[mi][ni][lane][3]
    err = np.abs(C - A@B.T).max()
    print(BM,BN,WM,WN,K,"max err",err)
    assert err < 1e-9
# bank-conflict check of swizzle for ldmatrix phases: 8 rows, same chunk -> distinct 16B slots mod 128
for r0 in range(0,128,8):
    for c in range(8):
        slots={ (swz(r0+i,c)%128)//16 for i in range(8)}
        assert len(slots)==8
# cp.async phases: 8 consecutive threads = one row's 8 chunks (thread id -> row id>>3, chunk id&7)
for base in range(0,1024,8):
    slots={(swz(i>>3,i&7)%128)//16 for i in range(base,base+8)}
    assert len(slots)==8
print("swizzle conflict-free")
run(64,64,2,2,128); run(32,64,2,2,64); run(128,128,2,4,64); run(64,128,2,2,64); run(32,32,2,2,64); run(64,64,2,4,64)
run(128,64,4,2,64); run(16,32,1,2,64); run(32,64,2,2,128)
# Part 2a: CTA-level logic of the block GEMM (and the TcCore thread-level loader/cursor replay that 2b reuses).
rng=np.random.default_rng(1)

def load_tile2(mat, base_row, rows_valid, seg_col0, k0, K, ROWS):
    # returns ROWS x BK tile; chunk (row, c) valid iff row < rows_valid and k0 + 8c < K
    t=np.zeros((ROWS,BK))
    for row in range(ROWS):
        for c in range(8):
            k=k0+c*8
            if row<rows_valid and k<K:
                t[row,c*8:c*8+8]=mat[base_row+row, seg_col0+k:seg_col0+k+8]
    return t

class Loader:  # TileLoader<ROWS, NT> for one thread: what the constructor precomputes
    def __init__(self, ROWS, NT, rows, ld, tid):
        assert NT%64==0 and (ROWS*8)%NT==0
        self.iters=ROWS*8//NT; self.step=NT//8
        c=tid&7; row0=tid>>3
        self.row_off=row0*ld+c*8          # element offset of this thread's first row (segment 0, k 0)
        self.step_off=self.step*ld
        self.soff=swz(row0,c); self.kc=c*8; self.row0=row0; self.c=c
        left=rows-row0
        self.valid_rows=0 if left<=0 else (left+self.step-1)//self.step
    def load(self, off, k0, K):  # -> list of (smem byte offset, element offset or None for zero-fill)
        out=[]
        k_ok=self.kc+k0<K
        for i in range(self.iters):
            ok=k_ok and i<self.valid_rows
            out.append((self.soff+i*self.step*128, self.row_off+off+i*self.step_off if ok else None))
        return out

def tc_core_threads(Aflat,A_ld,A_seg,A_rows,Bflat,B_ld,B_seg,B_rows,K,nseg,BM,BN,NT,seg_start,seg_step,hook):
    # TcCore::run for one warp group with its loaders and Cursor (offsets in elements, not bytes)
    ktp=(K+BK-1)//BK
    my_segs=(nseg-seg_start+seg_step-1)//seg_step if seg_start<nseg else 0
    total=my_segs*ktp
    la=[Loader(BM,NT,A_rows,A_ld,t) for t in range(NT)]; lb=[Loader(BN,NT,B_rows,B_ld,t) for t in range(NT)]
    a_step=seg_step*A_seg; b_step=seg_step*B_seg; k_end=ktp*BK
    cur=[0, seg_start*A_seg, seg_start*B_seg]
    def nxt(c):
        c[0]+=BK; c[1]+=BK; c[2]+=BK
        if c[0]>=K: c[1]+=a_step-k_end; c[2]+=b_step-k_end; c[0]=0
    acc=np.zeros((BM,BN)); ls=0; kt=0
    for t in range(total):  # tile t: loaded with the cursor after t advances (prologue and ring agree)
        seg=seg_start+ls*seg_step; k0=kt*BK
        assert cur[0]==k0 and cur[1]==seg*A_seg+k0 and cur[2]==seg*B_seg+k0, "cursor drifted"
        sA={}; sB={}
        for tid in range(NT):
            for (so,eo) in la[tid].load(cur[1],cur[0],K):
                assert so not in sA; sA[so]=np.zeros(8) if eo is None else Aflat[eo:eo+8]
            for (so,eo) in lb[tid].load(cur[2],cur[0],K):
                assert so not in sB; sB[so]=np.zeros(8) if eo is None else Bflat[eo:eo+8]
        assert len(sA)==BM*8 and len(sB)==BN*8, "a chunk of the stage was not written"
        a=np.array([np.concatenate([sA[swz(r,c)] for c in range(8)]) for r in range(BM)])
        b=np.array([np.concatenate([sB[swz(r,c)] for c in range(8)]) for r in range(BN)])
        acc+=a@b.T
        nxt(cur)
        kt+=1
        if kt==ktp:
            hook(seg,acc.copy())
            if ls+1<my_segs: acc[:]=0
            kt=0; ls+=1
    return acc

def tc_core(Amat,a_row0,a_rows,a_seg_cols,Bmat,b_row0,b_rows,b_seg_cols,K,nseg,BM,BN,hook):
    ktp=(K+BK-1)//BK; acc=np.zeros((BM,BN))
    for seg in range(nseg):
        for kt in range(ktp):
            a=load_tile2(Amat,a_row0,a_rows,seg*a_seg_cols,kt*BK,K,BM)
            b=load_tile2(Bmat,b_row0,b_rows,seg*b_seg_cols,kt*BK,K,BN)
            acc+=a@b.T
        hook(seg,acc.copy())
        if seg+1<nseg: acc[:]=0
    return acc

def block_gemm(M,N,K,batch,A,lda,a_batch,B,ldb,b_batch,Cbuf,ldc,c_batch,g,g_stride,bias,bias_batch,act,BM,BN):
    # A, B, Cbuf: flat arrays; we reshape views with strides by index math
    permuted = g>0 and g<N
    gg = g if permuted else N
    gs = g_stride if permuted else 0
    mt=(M+BM-1)//BM; nt=(N+BN-1)//BN
    for q in range(batch):
        for bx in range(mt*nt):
            tm=bx//nt; tn=bx-tm*nt; m0=tm*BM; n0=tn*BN
            # gather A/B as 2D matrices for this batch (rows with ld)
            Am=np.array([[A[q*a_batch+(m0+row)*lda+k] if m0+row<M else 0 for k in range(K)] for row in range(BM)]) if K>0 else np.zeros((BM,0))
            Bm=np.array([[B[q*b_batch+(n0+row)*ldb+k] if n0+row<N else 0 for k in range(K)] for row in range(BN)]) if K>0 else np.zeros((BN,0))
            acc=tc_core(np.pad(Am,((0,0),(0,8))),0,M-m0,0,np.pad(Bm,((0,0),(0,8))),0,N-n0,0,K,1,BM,BN,lambda s,a:None) if K>0 else np.zeros((BM,BN))
            for row in range(BM):
                for c in range(BN):
                    gm=m0+row; gc=n0+c
                    if gm>=M or gc>=N: continue
                    v=acc[row,c]+(bias[q*bias_batch+gc] if bias is not None else 0)
                    grp=gc//gg
                    Cbuf[q*c_batch+gm*ldc+grp*gs+(gc-grp*gg)]=act(v)

def check_monarch(n,i,o,b,r,BM,BN):
    ib,ob,g=i//b,o//b,r//b
    x=rng.standard_normal((n,i)); R=rng.standard_normal((b,r,ib)); L=rng.standard_normal((b,ob,r)); bias=rng.standard_normal(o)
    # CPU semantics
    u=[np.zeros((n,r)) for _ in range(b)]
    for j in range(b):
        t=x[:,j*ib:(j+1)*ib]@R[j].T
        for k in range(b): u[k][:,j*g:(j+1)*g]=t[:,k*g:(k+1)*g]
    ref=np.concatenate([u[k]@L[k].T for k in range(b)],axis=1)+bias
    # kernels
    ubuf=np.full(n*b*r,np.nan)
    block_gemm(n,r,ib,b,x.ravel(),i,ib,R.ravel(),ib,r*ib,ubuf,b*r,g,g,r,None,0,lambda v:v,BM,BN)
    assert not np.isnan(ubuf).any(), "u not fully written"
    ybuf=np.full(n*o,np.nan)
    block_gemm(n,ob,r,b,ubuf,b*r,r,L.ravel(),r,ob*r,ybuf,o,ob,0,0,bias,ob,lambda v:v,BM,BN)
    err=np.abs(ybuf.reshape(n,o)-ref).max()
    print("monarch",n,i,o,b,r,BM,BN,"err",err); assert err<1e-9

check_monarch(37,64,96,2,16,32,64)
check_monarch(70,96,64,4,32,64,64)
check_monarch(5,48,48,3,24,32,64)
check_monarch(20,192,384,4,16,64,128)

# ---------------------------------------------------------------------------------------------------------
# Part 2b: BLAST stage 1 (kernels/blr_blast_tile.cuh, BlastTile::run_tiles) replayed instruction by
# instruction for every CTA: zero_mix_buffers, load_s, the mainloop (tc_core_threads above, one call per
# warp group) with the gemm hook's shuffle + 4-byte stash stores, the tensor-core mix (ldmatrix .trans/.x1
# lane roles, m16n8k16 fragments) and the z stores, with shared memory modelled as an array of 16-bit
# slots at their byte offsets. Inputs are small integers, so every product and sum is exact in fp32 (checked)
# and the only rounding is the kernel's own (y_j -> 16 bits in the stash, z -> 16 bits in global memory):
# the result must equal the CPU formula with those two roundings bit for bit.
import os, re

def need(cond, msg):  # a check that survives python -O
    if not cond: raise AssertionError(msg)

LANES = np.arange(32)
LG, LQ = LANES >> 2, LANES & 3

def rnd16(v, dt):
    """Round to nearest even to bf16 (8 significant bits) or f16 (11); normal range only (checked below)."""
    p = 8 if dt == 'bf16' else 11
    m, e = np.frexp(np.asarray(v, dtype=np.float64))
    return np.ldexp(np.round(np.ldexp(m, p)), e - p)

def _check_rnd16():
    v = (rng.standard_normal(20000) * np.exp2(rng.integers(-20, 20, 20000))).astype(np.float32)
    u = v.view(np.uint32).astype(np.uint64)
    bf = (((u + 0x7fff + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)  # __float2bfloat16_rn
    need(np.array_equal(rnd16(v.astype(np.float64), 'bf16'), bf.astype(np.float64)), "rnd16 bf16")
    w = v[np.abs(v) < 60000]; w = w[np.abs(w) > 1e-4]
    need(np.array_equal(rnd16(w.astype(np.float64), 'f16'), w.astype(np.float16).astype(np.float64)), "rnd16 f16")
_check_rnd16()

def word_conflict(addrs):
    """Conflict degree of one warp's <= 4-byte shared accesses: the most distinct 32-bit words in one bank."""
    words = np.unique(np.asarray(addrs) // 4)
    return int(np.bincount(words % 32, minlength=32).max()) if len(words) else 0

def ldm_phase_conflict(rows):
    """Conflict degree of one 8-row ldmatrix phase: the most distinct 16-byte rows in one 16-byte bank slot."""
    u = np.unique(np.asarray(rows) // 16)
    return int(np.bincount(u % 8, minlength=8).max())

def mma16816(a, b):
    """mma.m16n8k16 on fragments (PTX ISA): a = 4 regs, b = 2 regs, each [32 lanes][2 halves: lower address
    / lower column first]; returns the 4 C values of every lane ([32][4])."""
    A = np.zeros((16, 16)); B = np.zeros((16, 8))
    for h in range(2):
        A[LG, 2 * LQ + h] = a[0][:, h]; A[LG + 8, 2 * LQ + h] = a[1][:, h]
        A[LG, 8 + 2 * LQ + h] = a[2][:, h]; A[LG + 8, 8 + 2 * LQ + h] = a[3][:, h]
        B[2 * LQ + h, LG] = b[0][:, h]; B[8 + 2 * LQ + h, LG] = b[1][:, h]
    D = A @ B
    return np.stack([D[LG, 2 * LQ], D[LG, 2 * LQ + 1], D[LG + 8, 2 * LQ], D[LG + 8, 2 * LQ + 1]], axis=1)

def ldmatrix(sm, addrs, nmat, trans, conf):
    """ldmatrix.m8n8.x{1,2,4}[.trans].b16: matrix m's 8 rows come from the addresses of lanes 8m..8m+7 (the
    other lanes' addresses are ignored); a stored matrix M[row][col] is 8 consecutive 16-bit elements per row.
    Plain: lane i gets M[i/4][2(i%4)], M[i/4][2(i%4)+1]; .trans: M[2(i%4)][i/4], M[2(i%4)+1][i/4]."""
    out = []
    for m in range(nmat):
        rows = np.asarray(addrs[8 * m:8 * m + 8])
        need(np.all(rows % 16 == 0), "ldmatrix row address not 16-byte aligned")
        conf.append(ldm_phase_conflict(rows))
        M = sm[(rows[:, None] + 2 * np.arange(8)[None, :]) // 2]
        if trans: out.append(np.stack([M[2 * LQ, LG], M[2 * LQ + 1, LG]], axis=1))
        else: out.append(np.stack([M[LG, 2 * LQ], M[LG, 2 * LQ + 1]], axis=1))
    return out

class BlastTileSim:
    """BlastTile<T, BM, BN, WM, WN, STAGES, KJ, G> (kernels/blr_blast_tile.cuh), one CTA at a time."""
    SHFL = 4  # the hook's shuffle distance (a class attribute only so that a mutant can change it)

    @staticmethod
    def lane_roles():  # mix(): a_j, a_t, b_k, b_j
        return ((LANES & 7) + ((LANES >> 4) << 3), ((LANES >> 3) & 1) * 8,
                (LANES & 7) + ((LANES >> 4) << 3), ((LANES >> 3) & 1) * 8)
    def __init__(self, BM, BN, WM, WN, STAGES, KJ, G, dt='bf16'):
        need(KJ in (8, 16) and BM % 16 == 0 and BN % 8 == 0 and 1 <= G <= 8, "static_asserts of BlastTile")
        self.BM, self.BN, self.WM, self.WN, self.STAGES, self.KJ, self.G, self.dt = BM, BN, WM, WN, STAGES, KJ, G, dt
        self.core_threads = WM * WN * 32
        self.kWarpM, self.kWarpN = BM // WM, BN // WN
        need(self.kWarpM % 16 == 0 and self.kWarpN % 16 == 0, "TcCore static_assert: warp tile multiple of 16x16")
        self.MI, self.NI = self.kWarpM // 16, self.kWarpN // 8
        self.kThreads = G * self.core_threads; self.kWarps = self.kThreads // 32
        self.kPipeBytes = STAGES * (BM + BN) * 128
        self.kRowBytes = BM * 2; self.kTChunks = BM // 8
        self.kFeatBytes = KJ * self.kRowBytes + 16
        self.kStashBytes = BN * self.kFeatBytes
        self.kSFeatBytes = KJ * KJ * 2; self.kSBytes = BN * self.kSFeatBytes
        self.kNT = 2 if KJ == 16 else 1
        self.st = G * self.kPipeBytes; self.ss = self.st + self.kStashBytes  # shared byte addresses
        self.smem_bytes = G * self.kPipeBytes + self.kStashBytes + self.kSBytes
        need(self.st % 128 == 0 and self.ss % 16 == 0 and (self.kStashBytes + self.kSBytes) % 16 == 0,
             "stash / S slice alignment")
        self.conf = {'hook': 0, 'ldmA': 0, 'ldmB': 0, 'load_s': 0}
        self.mma_mix = 0

    def stash_off(self, n, j, t):
        kDiv = 1 if self.kTChunks >= 8 else 8 // self.kTChunks
        kMask = 7 if self.kTChunks >= 8 else self.kTChunks - 1
        phys = (t >> 3) ^ ((j // kDiv) & kMask)
        return n * self.kFeatBytes + j * self.kRowBytes + phys * 16 + (t & 7) * 2

    def s_off(self, n, k, j):
        if self.KJ == 16: return n * self.kSFeatBytes + k * 32 + (((j >> 3) ^ ((k >> 2) & 1)) << 4) + (j & 7) * 2
        return n * self.kSFeatBytes + k * 16 + j * 2

    def layout_masks(self, b):
        """Halfword slots (relative to the stash) of y_j(t, n), j < b, and of s_kj[n], k, j < b; checks that the
        maps are injective, inside their regions and off the padding."""
        n, j, t = np.meshgrid(np.arange(self.BN), np.arange(self.KJ), np.arange(self.BM), indexing='ij')
        so = self.stash_off(n, j, t)
        need(len(np.unique(so)) == so.size and so.min() >= 0 and so.max() < self.kStashBytes, "stash_off not injective")
        need(np.all((so % self.kFeatBytes) < self.KJ * self.kRowBytes), "stash_off hits a feature block's padding")
        n2, k2, j2 = np.meshgrid(np.arange(self.BN), np.arange(self.KJ), np.arange(self.KJ), indexing='ij')
        s = self.s_off(n2, k2, j2)
        need(len(np.unique(s)) == s.size and s.min() >= 0 and s.max() < self.kSBytes, "s_off not injective")
        total = (self.kStashBytes + self.kSBytes) // 2
        ms = np.zeros(total, bool); ms[so[:, :b, :].ravel() // 2] = True
        mS = np.zeros(total, bool); mS[(self.kStashBytes + s[:, :b, :b].ravel()) // 2] = True
        return ms, mS

    # --- the kernel's pieces -------------------------------------------------------------------------
    def zero_mix_buffers(self, sm):
        kVecs = (self.kStashBytes + self.kSBytes) // 16
        for tid in range(self.kThreads):  # p[i] = 0 for i = tid, tid + kThreads, ...
            for i in range(tid, kVecs, self.kThreads): sm[(self.st + 16 * i) // 2:(self.st + 16 * i + 16) // 2] = 0.0

    def load_s(self, p, n0, sm, written):
        b, r = p['b'], p['r']; bb = b * b; S = p['S']
        total = bb * (self.BN // 8)
        for base in range(0, total, 32):  # one warp instruction: idx = base + lane (idx = threadIdx.x + i·kThreads)
            idx = base + LANES; idx = idx[idx < total]
            fg = idx // bb; kj = idx - fg * bb; k = kj // b; j = kj - k * b
            c0 = fg * 8; gn = n0 + c0
            w = np.zeros((len(idx), 8))
            for li in range(len(idx)):
                src = kj[li] * r + gn[li]
                if p['vec_s'] and gn[li] + 8 <= r:
                    need(src % 8 == 0, "load_s: 16-byte S load not aligned")
                    w[li] = S[src:src + 8]
                else:
                    for f in range(8):
                        if gn[li] + f < r: w[li, f] = S[src + f]
            for f in range(8):  # one 2-byte store instruction per f
                off = self.ss + self.s_off(c0 + f, k, j)
                self.conf['load_s'] = max(self.conf['load_s'], word_conflict(off))
                sm[off // 2] = w[:, f]; written[(off - self.st) // 2] += 1

    def hook(self, gwarp, seg, acc, sm, written):
        """The gemm's segment hook for one warp (acc = the group's BM×BN accumulator tile)."""
        wm0, wn0 = (gwarp // self.WN) * self.kWarpM, (gwarp % self.WN) * self.kWarpN
        odd = (LG & 1) != 0
        for mi in range(self.MI):
            for ni in range(self.NI):
                for h in range(2):
                    row = wm0 + mi * 16 + LG + 8 * h; col = wn0 + ni * 8 + 2 * LQ  # a[mi][ni][2h], [2h+1]
                    v0, v1 = acc[row, col], acc[row, col + 1]
                    other = np.where(odd, v0, v1)[LANES ^ self.SHFL]  # __shfl_xor_sync(.., odd ? v0 : v1, 4)
                    lo, hi = np.where(odd, other, v0), np.where(odd, v1, other)  # pack2(other, v1) / pack2(v0, other)
                    t = wm0 + mi * 16 + h * 8 + (LG & ~1)
                    n = wn0 + ni * 8 + 2 * LQ + odd.astype(int)
                    off = self.st + self.stash_off(n, seg, t)
                    need(np.all(off % 4 == 0), "hook: 4-byte stash store not aligned")
                    self.conf['hook'] = max(self.conf['hook'], word_conflict(off))
                    sm[off // 2] = rnd16(lo, self.dt); sm[off // 2 + 1] = rnd16(hi, self.dt)
                    written[(off - self.st) // 2] += 1; written[(off - self.st) // 2 + 1] += 1

    def gemm(self, p, m0, n0, sm, written):
        b, ib, r, M = p['b'], p['ib'], p['r'], p['M']
        kt = (ib + BK - 1) // BK
        most = (b + self.G - 1) // self.G
        barriers = []
        for grp in range(self.G):  # groups run concurrently on disjoint stash rows j; order does not matter
            def hk(seg, acc):
                need(np.abs(acc).max() < 2 ** 24, "accumulator not exact in fp32: test inputs too large")
                for gwarp in range(self.core_threads // 32): self.hook(gwarp, seg, acc, sm, written)
            tc_core_threads(p['x'][m0 * p['ldx']:], p['ldx'], ib, M - m0, p['V'][n0 * ib:], ib, r * ib, r - n0,
                            ib, b, self.BM, self.BN, self.core_threads, grp, self.G, hk)
            # named barriers: mainloop passes total + 1, the padding loop (most - mine)·kt more
            mine = (b - grp + self.G - 1) // self.G if grp < b else 0
            barriers.append(mine * kt + 1 + ((most - mine) * kt if self.G > 1 else 0))
        need(len(set(barriers)) == 1, f"groups pass unequal numbers of named barriers {barriers}")

    def mix(self, p, m0, n0, sm, z, zcount):
        BM, BN, KJ = self.BM, self.BN, self.KJ
        kFG = BN // 8; kItems = kFG * (BM // 16)
        b, r, M = p['b'], p['r'], p['M']
        second = KJ == 16 and b > 8
        ldz = b * r
        zero = np.zeros((32, 2))
        a_j, a_t, b_k, b_j = self.lane_roles()
        ca, cb = [], []
        for warp in range(self.kWarps):
            for it in range(warp, kItems, self.kWarps):
                fg, t0 = it % kFG, (it // kFG) * 16
                c = np.zeros((8, self.kNT, 32, 4))
                for f in range(8):
                    n = fg * 8 + f
                    if KJ == 16:
                        a = ldmatrix(sm, self.st + self.stash_off(n, a_j, t0 + a_t), 4, True, ca)
                        bq = ldmatrix(sm, self.ss + self.s_off(n, b_k, b_j), 4, False, cb)
                        b0, b1 = (bq[0], bq[1]), (bq[2], bq[3])
                    else:
                        a = ldmatrix(sm, self.st + self.stash_off(n, LANES & 7, t0 + a_t), 2, True, ca) + [zero, zero]
                        b0 = (ldmatrix(sm, self.ss + self.s_off(n, LANES & 7, 0), 1, False, cb)[0], zero)
                        b1 = (zero, zero)
                    c[f, 0] += mma16816(a, b0); self.mma_mix += 1
                    if KJ == 16 and second:
                        c[f, self.kNT - 1] += mma16816(a, b1); self.mma_mix += 1
                need(np.abs(c).max() < 2 ** 24, "mix accumulator not exact in fp32: test inputs too large")
                gn = n0 + fg * 8; valid = r - gn
                if valid <= 0: continue
                for nt in range(self.kNT):
                    for e in range(4):
                        k = 2 * LQ + (e & 1) + 8 * nt
                        gm = m0 + t0 + LG + 8 * (e >> 1)
                        act = (k < b) & (gm < M)
                        dst = gm * ldz + k * r + gn
                        vals = rnd16(c[:, nt, :, e].T, self.dt)  # [lane][f]
                        if p['vec_z'] and valid >= 8:
                            need(np.all(dst[act] % 8 == 0), "z: 16-byte store not aligned")
                            fs = np.arange(8)
                        else:
                            fs = np.arange(min(8, valid))
                        idx = dst[act][:, None] + fs[None, :]
                        need(idx.size == 0 or (idx.min() >= 0 and idx.max() < z.size), "z store out of bounds")
                        z[idx] = vals[act][:, fs]; np.add.at(zcount, idx, 1)
        self.conf['ldmA'] = max(self.conf['ldmA'], max(ca)); self.conf['ldmB'] = max(self.conf['ldmB'], max(cb))

    def check_stash_and_s(self, p, m0, n0, sm):
        """What the mix will read: stash slot of (n, j, t) = y_j[m0 + t, n0 + n] rounded to 16 bits (0 outside
        the matrix, and for j >= b); S slot of (n, k, j) = s_kj[n0 + n] (0 outside, and for k or j >= b)."""
        b, r, M = p['b'], p['r'], p['M']
        n, j, t = np.meshgrid(np.arange(self.BN), np.arange(self.KJ), np.arange(self.BM), indexing='ij')
        want = np.zeros(n.shape)
        ok = (j < b) & (m0 + t < M) & (n0 + n < r)
        want[ok] = p['yref'][j[ok], m0 + t[ok], n0 + n[ok]]
        got = sm[(self.st + self.stash_off(n, j, t)) // 2]
        need(np.array_equal(got, want), f"stash != 16-bit y_j (tile m0={m0} n0={n0}): max diff {np.nanmax(np.abs(got - want))}")
        n, k, j = np.meshgrid(np.arange(self.BN), np.arange(self.KJ), np.arange(self.KJ), indexing='ij')
        want = np.zeros(n.shape)
        ok = (k < b) & (j < b) & (n0 + n < r)
        want[ok] = p['S'][(k[ok] * b + j[ok]) * r + n0 + n[ok]]
        need(np.array_equal(sm[(self.ss + self.s_off(n, k, j)) // 2], want), f"S slice wrong (tile n0={n0})")

    def run_cta(self, p, cta, ctas, z, zcount):
        """run_tiles for CTA `cta` of a grid of `ctas`: tiles cta, cta + ctas, ... (rank slice fastest)."""
        tiles = p['m_tiles'] * p['n_tiles']
        t = cta
        if t >= tiles: return
        sm = np.full(self.smem_bytes // 2, np.nan)  # stale shared memory: NaN, which any read would propagate
        ms, mS = self.layout_masks(p['b'])
        self.zero_mix_buffers(sm)
        need(not np.isnan(sm[self.st // 2:]).any(), "zero_mix_buffers left slots unzeroed")
        written = np.zeros((self.kStashBytes + self.kSBytes) // 2, int)
        m0, n0 = (t // p['n_tiles']) * self.BM, (t % p['n_tiles']) * self.BN
        self.load_s(p, n0, sm, written)
        while True:
            self.gemm(p, m0, n0, sm, written)
            self.check_stash_and_s(p, m0, n0, sm)
            # exactly the y_j (j < b) and s_kj (k, j < b) slots written, each once: padding stays zero
            need(np.array_equal(written, (ms | mS).astype(int)), "stash/S writes: a slot missed, doubled or padding hit")
            written[:] = 0
            self.mix(p, m0, n0, sm, z, zcount)
            nxt = t + ctas
            if nxt >= tiles: break
            m0, n0 = (nxt // p['n_tiles']) * self.BM, (nxt % p['n_tiles']) * self.BN
            self.load_s(p, n0, sm, written)
            t = nxt

def check_layout_conflicts():
    """Bank conflicts of the mix layouts for every BM and KJ, independent of the tile table: every warp store
    the hook can issue (token rows t = 8·u + (g & ~1), features 8·v + 2q + odd, any input block j) and every
    ldmatrix phase of the mix (A: 8 rows j of one token chunk; B: 8 rows k of one j half)."""
    res = {}
    for BM in (16, 32, 64, 128):
        for KJ in (8, 16):
            s = BlastTileSim(BM, 64, 1, 4 if BM == 16 else 2, 2, KJ, 1)
            odd = (LG & 1)
            hook = max(word_conflict(s.stash_off(v * 8 + 2 * LQ + odd, j, u * 8 + (LG & ~1)))
                       for v in range(8) for j in range(KJ) for u in range(BM // 8))
            ldA = max(ldm_phase_conflict(s.stash_off(n, j0 + np.arange(8), t))
                      for n in range(64) for j0 in range(0, KJ, 8) for t in range(0, BM, 8))
            ldB = max(ldm_phase_conflict(s.s_off(n, k0 + np.arange(8), j0))
                      for n in range(64) for k0 in range(0, KJ, 8) for j0 in range(0, KJ, 8))
            res[(BM, KJ)] = (hook, ldA, ldB)
            need(hook == 1 and ldA == 1 and ldB == 1, f"BM {BM} KJ {KJ}: hook {hook}-way, A phase {ldA}-way, B {ldB}-way")
    print("mix layouts conflict-free for BM in 16/32/64/128, KJ in 8/16: hook stores 32 banks, every A (.trans) "
          "and B ldmatrix phase 8 distinct 16-byte slots")

def blast_table():
    """The tensor-core tile table of kernels/blr_blast.cu (parsed, so the simulation follows the code)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'kernels', 'blr_blast.cu')
    pat = re.compile(r'make_blast<T, (\d+), (\d+), (\d+), (\d+), (\d+), (\d+), (\d+)>\((\d+), "([^"]+)", [\d.]+\),'
                     r'\s*//[^\n]*?(\d+) KiB')
    rows = [tuple(int(v) for v in m.groups()[:8]) + (m.group(9), int(m.group(10))) for m in pat.finditer(open(path).read())]
    need(len(rows) >= 4, "could not parse the tile table of kernels/blr_blast.cu")
    return rows

BLAST_RUNS = []  # max |z - reference| of every check_blast run (mutants included until they raise)

def check_blast(cfg, b, M, r, ib, ldx_pad=0, ctas=2, dt='bf16', vec_ok=True, quiet=False, sim_cls=None):
    BM, BN, WM, WN, STAGES, KJ, G = cfg
    sim = (sim_cls or BlastTileSim)(BM, BN, WM, WN, STAGES, KJ, G, dt)
    i = b * ib
    ldx = b * ib if M <= 1 else i + ldx_pad  # make_blast_params: M <= 1 -> ldx = b·ib
    x = np.full((M, ldx), np.nan); x[:, :i] = rng.integers(-3, 4, (M, i))  # pad columns must never be read
    V = rng.integers(-3, 4, (b, r, ib)).astype(float); S = rng.integers(-3, 4, (b, b, r)).astype(float)
    p = dict(x=x.ravel(), ldx=ldx, V=V.ravel(), S=S.ravel(), M=M, b=b, r=r, ib=ib,
             m_tiles=(M + BM - 1) // BM, n_tiles=(r + BN - 1) // BN,
             vec_z=int(r % 8 == 0 and vec_ok), vec_s=int(r % 8 == 0 and vec_ok))
    # CPU semantics (engine/backend/cpu/cpu_blr.cpp) with the kernel's two roundings
    y = [rnd16(x[:, j * ib:(j + 1) * ib] @ V[j].T, dt) for j in range(b)]
    ref = np.stack([rnd16(sum(y[j] * S[k, j] for j in range(b)), dt) for k in range(b)], axis=1)  # [M, b, r]
    p['yref'] = np.stack(y)
    z = np.full(M * b * r, np.nan); zc = np.zeros(M * b * r, int)
    tiles = p['m_tiles'] * p['n_tiles']; ctas = min(ctas, tiles)
    for cta in range(ctas): sim.run_cta(p, cta, ctas, z, zc)
    need(np.all(zc == 1), f"z elements written {zc.min()}..{zc.max()} times (must be exactly once)")
    err = np.abs(z.reshape(M, b, r) - ref).max()
    gemm_mma = tiles * b * ((ib + BK - 1) // BK) * (BK // 16) * (BM // 16) * (BN // 8)
    if not quiet:
        print(f"blast {BM}x{BN} KJ{KJ} G{G} {dt} b={b} M={M} r={r} ib={ib} vec={p['vec_z']} ctas={ctas}/{tiles}: "
              f"z max err {err}  conflicts hook {sim.conf['hook']} ldmA {sim.conf['ldmA']} ldmB {sim.conf['ldmB']} "
              f"load_s {sim.conf['load_s']}  mix/gemm mma {sim.mma_mix / gemm_mma:.3f}")
    BLAST_RUNS.append(err)
    need(err == 0, f"BLAST stage 1 {cfg} b={b} M={M} r={r} ib={ib}: z differs from the CPU formula by {err}")
    need(sim.conf['hook'] == 1 and sim.conf['ldmA'] == 1 and sim.conf['ldmB'] == 1, f"bank conflicts {sim.conf}")
    return sim

check_layout_conflicts()
table = blast_table()
for (BM, BN, WM, WN, ST, KJ, G, tid, name, kib) in table:
    sb = BlastTileSim(BM, BN, WM, WN, ST, KJ, G).smem_bytes
    need(abs(sb / 1024 - kib) <= 1, f"tile {tid} {name}: smem {sb / 1024:.1f} KiB, comment says {kib}")
    need(sb <= 227 * 1024, f"tile {tid}: {sb} bytes > 227 KiB")
    need(tid not in (5, 6, 7, 8) or sb <= 163 * 1024, f"tile {tid} ({sb} bytes) does not fit sm_87's 163 KiB")
print("tile table:", "; ".join(f"{t[7]}={t[8]} {BlastTileSim(*t[:7]).smem_bytes / 1024:.1f}KiB" for t in table))

load_s_deg = {}
for (BM, BN, WM, WN, ST, KJ, G, tid, name, kib) in table:
    cfg = (BM, BN, WM, WN, ST, KJ, G)
    main = tid in (1, 2, 4, 7)  # 128x64 KJ8, 64x64 KJ16, 32x32 KJ16 G2, 16x32 KJ8 G3: every b
    bs = [v for v in ((1, 2, 3, 4, 5, 8, 9, 16) if main else (2, 9, 16)) if v <= KJ]
    for b in bs:
        Mr = BM + BM // 2 + 3                      # two token tiles, the second ragged
        ib = 72 if b % 2 else 136                  # multiple of 8, not of 64: ragged last k-tile
        s = check_blast(cfg, b, Mr, BN + 24, ib, ldx_pad=8 if b % 3 == 0 else 0)  # r % 8 == 0: 16-byte paths
        load_s_deg[(tid, b)] = s.conf['load_s']
        if main:
            s = check_blast(cfg, b, Mr, BN + 13, ib, ctas=3)                      # r % 8 == 5: scalar paths
            load_s_deg[(tid, b)] = max(load_s_deg[(tid, b)], s.conf['load_s'])
    if main:
        check_blast(cfg, bs[-1], 1, BN // 2 + 8, 8, ctas=1)                      # one token, ib = 8
        check_blast(cfg, min(3, KJ), 2 * BM + 1, 2 * BN, 64, ctas=4, vec_ok=False)  # misaligned z/S: scalar, r%8==0
check_blast((32, 32, 2, 2, 4, 16, 2), 4, 45, 56, 200, dt='f16')                # f16 rounding, ragged ib = 200

# The checks can fail: each of these one-line departures from the kernel must be caught.
print(f"BLAST stage 1: {len(BLAST_RUNS)} runs, max |z - CPU formula| = {max(BLAST_RUNS)} (stash and S slice exact too)")
class NoStashSwizzle(BlastTileSim):
    def stash_off(self, n, j, t): return n * self.kFeatBytes + j * self.kRowBytes + (t >> 3) * 16 + (t & 7) * 2
class NoSHalfSwap(BlastTileSim):
    def s_off(self, n, k, j): return n * self.kSFeatBytes + k * 32 + j * 2
class ShuffleByEight(BlastTileSim):
    SHFL = 8
class ATokenJSwapped(BlastTileSim):
    @staticmethod
    def lane_roles():
        a_j, a_t, b_k, b_j = BlastTileSim.lane_roles()
        return (LANES & 7) + (((LANES >> 3) & 1) << 3), ((LANES >> 4) & 1) * 8, b_k, b_j
class BKHalvesSwapped(BlastTileSim):
    @staticmethod
    def lane_roles():
        a_j, a_t, b_k, b_j = BlastTileSim.lane_roles()
        return a_j, a_t, (LANES & 7) + (((LANES >> 3) & 1) << 3), ((LANES >> 4) & 1) * 8
class NoFeaturePad(BlastTileSim):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.kFeatBytes -= 16; self.kStashBytes = self.BN * self.kFeatBytes; self.ss = self.st + self.kStashBytes
        self.smem_bytes -= 16 * self.BN
for name, cls, cfg, b in (("stash without the j swizzle", NoStashSwizzle, (64, 64, 2, 4, 4, 16, 1), 3),
                          ("S rows without the half swap", NoSHalfSwap, (32, 32, 2, 2, 4, 16, 2), 3),
                          ("hook shuffle with lane ^ 8", ShuffleByEight, (32, 32, 2, 2, 4, 16, 2), 3),
                          ("A lane roles: token / j halves swapped", ATokenJSwapped, (32, 32, 2, 2, 4, 16, 1), 9),
                          ("B lane roles: k / j halves swapped", BKHalvesSwapped, (32, 32, 2, 2, 4, 16, 1), 9),
                          ("stash feature blocks unpadded", NoFeaturePad, (16, 32, 1, 2, 5, 8, 3), 3)):
    try:
        check_blast(cfg, b, cfg[0] + 3, cfg[1] + 8, 72, quiet=True, sim_cls=cls)
    except AssertionError as e:
        print(f"mutant caught ({name}): {str(e)[:90]}")
        continue
    raise AssertionError(f"mutant not caught: {name}")
# The header of blr_blast_tile.cuh puts the mix at "~2 % of the tile's MMA work (KJ·b/(i) padded)": the
# mma count of the mix over the mainloop's for DiT-XL's i = 1152 at b = 9 on the 64x64 tile, for the report.
_b, _ib, _BM, _BN = 9, 128, 64, 64
_mix = (_BM // 16) * _BN * 2
_gemm = (_BM // 16) * (_BN // 8) * _b * ((_ib + BK - 1) // BK) * (BK // 16)
print(f"mix / mainloop mma instructions, 64x64 tile, b = 9, i = 1152: {_mix}/{_gemm} = {_mix / _gemm:.3f}")
print("load_s 2-byte store conflict degree (tile id, b): " +
      " ".join(f"{t}/{b}:{d}" for (t, b), d in sorted(load_s_deg.items())))
print("index simulation: all checks passed")
