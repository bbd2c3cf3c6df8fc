#!/usr/bin/env python3
"""Checks the index math of the BLR tensor-core kernels without a GPU (numpy only).

Part 1 replays kernels/blr_tile.cuh for one CTA exactly: the XOR-swizzled tile layout, the ldmatrix.x4
lane addressing, the mma.m16n8k16 fragment layouts (PTX ISA) and the epilogue's accumulator mapping, and
compares with A·Bᵀ; it also checks that ldmatrix phases and cp.async stores are bank-conflict free.
Part 2 replays the CTA-level logic of block_gemm_tc_kernel (tiles, zero-fill predicates, the Monarch
permuting store) and blast_stage1_tc_kernel (segments, fp32 stash, mixing item map, z stores) against
the CPU semantics of Monarch and BLAST (engine/backend/cpu/cpu_blr.cpp).
Part 2 loads tiles the way TcCore::run does: each thread's TileLoader (row pointer, swizzled offset, valid
rows) and the Cursor that walks k-tiles and segments by additions only, in the order prologue + ring.
Run: python3 tools/blr_kernel_index_sim.py   (prints max errors; raises on a mismatch)
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
# Emulates the CTA-level index logic of block_gemm_tc_kernel (permuted store) and blast_stage1_tc_kernel
# (segments, fp32 stash, mix item mapping, z store predicates) with numpy, against the CPU semantics.

# Part 2: CTA-level logic of the block GEMM and the BLAST stage-1 kernel.
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

def blast_stage1(M,b,r,ib,x,ldx,V,S,z,BM,BN,G=1,NT=128):
    nt=(r+BN-1)//BN; mt=(M+BM-1)//BM
    Xm=x.reshape(-1,ldx)   # includes padding rows? x has M rows
    Vm=V.reshape(b*r,ib)
    for bx in range(mt*nt):
        tm=bx//nt; tn=bx-tm*nt; m0=tm*BM; n0=tn*BN
        ss=np.zeros((b*b,BN))
        for idx in range(b*b*BN):
            kj=idx//BN; c=idx-kj*BN
            ss[kj,c]=S[kj*r+n0+c] if n0+c<r else 0
        stash=np.zeros((b,BM,BN+4))
        def hook(seg,acc): stash[seg,:, :BN]=acc
        Xp=np.pad(Xm,((0,BM),(0,64))); Vp=np.pad(Vm,((0,BN+b*r),(0,64)))  # padding: reads past the end show up as zeros
        # A operand: rows from m0, segment column offset ib; B: V rows n0 + seg*r (seg offset r*ib elements = r rows)
        def tc_blast(group):  # TcCore::run for one warp group: segments group, group+G, ...
            # A = x rows m0.. (ld ldx, segment = ib columns); B = V rows n0.. of V_seg (ld ib, segment r*ib)
            Aflat=Xp[m0:].ravel(); Bflat=Vp[n0:].ravel()
            tc_core_threads(Aflat,Xp.shape[1],ib,M-m0,Bflat,Vp.shape[1],r*Vp.shape[1],r-n0,ib,b,BM,BN,NT,group,G,hook)
        for group in range(G): tc_blast(group)
        MR=1 if G>1 else 2
        kColGroups=BN//32; kItems=(BM//(4*MR))*kColGroups
        for it in range(kItems):
            for lane in range(32):
                rg=lane>>3; cq=lane&7
                ir=it//kColGroups; ic=it-ir*kColGroups
                col=ic*32+cq*4; gc=n0+col; row0=ir*(4*MR)+rg
                for k in range(b):
                    o=np.zeros((MR,4))
                    for j in range(b):
                        for rr in range(MR):
                            o[rr]+=ss[k*b+j,col:col+4]*stash[j,row0+4*rr,col:col+4]
                    for rr in range(MR):
                        gm=m0+row0+4*rr
                        if gm<M and gc<r:
                            valid=r-gc
                            for e in range(min(4,valid)):
                                z[gm*(b*r)+k*r+gc+e]=o[rr,e]

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

def check_blast(n,i,o,b,r,BM,BN,ldx_pad=0,G=1,NT=128):
    ib,ob=i//b,o//b
    x=rng.standard_normal((n,i)); U=rng.standard_normal((b,ob,r)); S=rng.standard_normal((b,b,r)); V=rng.standard_normal((b,r,ib))
    y=[x[:,j*ib:(j+1)*ib]@V[j].T for j in range(b)]
    ref=np.concatenate([sum(y[j]*S[k,j] for j in range(b))@U[k].T for k in range(b)],axis=1)
    ldx=i+ldx_pad; xb=np.zeros((n,ldx)); xb[:,:i]=x
    z=np.full(n*b*r,np.nan)
    blast_stage1(n,b,r,ib,xb.ravel(),ldx,V.ravel(),S.ravel(),z,BM,BN,G,NT)
    assert not np.isnan(z).any(), "z not fully written"
    ybuf=np.full(n*o,np.nan)
    block_gemm(n,ob,r,b,z,b*r,r,U.ravel(),r,ob*r,ybuf,o,ob,0,0,None,0,lambda v:v,64,64)
    err=np.abs(ybuf.reshape(n,o)-ref).max()
    print("blast",n,i,o,b,r,BM,BN,"groups",G,"threads/group",NT,"err",err); assert err<1e-8

check_monarch(37,64,96,2,16,32,64)
check_monarch(70,96,64,4,32,64,64)
check_monarch(5,48,48,3,24,32,64)
check_monarch(20,192,384,4,16,64,128)
check_blast(37,64,96,2,16,32,32)
check_blast(70,96,64,4,32,64,64,ldx_pad=8)
check_blast(9,48,48,3,24,32,32)
check_blast(33,192,384,4,20,32,32)
check_blast(17,160,320,5,40,128,64)
check_blast(21,96,48,3,24,32,32,G=3)
check_blast(40,288,144,9,40,32,32,G=3)
check_blast(11,64,96,2,16,32,32,G=3)
check_blast(19,128,64,4,32,32,32,G=2)
check_blast(21,600,216,3,72,32,32,G=2)           # ib = 200: ragged last k-tile of every segment
check_blast(13,600,216,3,72,16,32,G=3,NT=64)     # 16x32 tile, 2 warps per group
check_blast(70,1224,144,9,40,64,64,NT=256)       # ib = 136, 64x64 / 8 warps
check_blast(33,1224,144,9,72,32,64,G=2,NT=128)   # 32x64, ragged rank slice
check_blast(9,512,256,16,32,32,32,NT=128)        # b = 16

