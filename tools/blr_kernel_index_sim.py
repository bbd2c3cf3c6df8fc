#!/usr/bin/env python3
"""Checks the index math of the BLR tensor-core kernels without a GPU (numpy only).

Part 1 replays kernels/blr_tile.cuh for one CTA exactly: the XOR-swizzled tile layout, the ldmatrix.x4
lane addressing, the mma.m16n8k16 fragment layouts (PTX ISA) and the epilogue's accumulator mapping, and
compares with A·Bᵀ; it also checks that ldmatrix phases and cp.async stores are bank-conflict free.
Part 2 replays the CTA-level logic of block_gemm_tc_kernel (tiles, zero-fill predicates, the Monarch
permuting store) and blast_stage1_tc_kernel (segments, fp32 stash, mixing item map, z stores) against
the CPU semantics of Monarch and BLAST (engine/backend/cpu/cpu_blr.cpp).
Part 3 replays the single-launch layer kernel's schedule (blr_onelaunch.cu): ticket -> tile decoding of both
stages, the per-token-tile ready counters and the final reset, in random interleavings with few resident CTAs
(every tile once, no stage-2 read before its rows are complete, no deadlock, counters back to zero).
Run: python3 tools/blr_kernel_index_sim.py   (prints max errors; raises on a mismatch)
"""
# Part 1: simulates blr_tile.cuh's TcCore index math for one CTA: swizzled tile layout, ldmatrix.x4 lane
# addressing, mma.m16n8k16 fragment semantics (PTX ISA), and the epilogue's C fragment mapping.
import numpy as np
rng = np.random.default_rng(0)
BK=32
def swz(row,c): return row*64 + ((c ^ ((row>>1)&3))<<4)

def load_tile(rows_mat, R):  # smem as dict byte_offset->8 elements chunk
    sm = {}
    for row in range(R):
        for c in range(4):
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
            for kk in range(2):
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
for r0 in range(0,64,8):
    for c in range(4):
        slots={ (swz(r0+i,c)%128)//16 for i in range(8)}
        assert len(slots)==8
# cp.async phases: 8 consecutive chunk ids
for base in range(0,256,8):
    slots={(swz(i>>2,i&3)%128)//16 for i in range(base,base+8)}
    assert len(slots)==8
print("swizzle conflict-free")
run(64,64,2,2,64); run(32,64,2,2,32); run(128,128,2,4,32); run(64,128,2,2,32); run(32,32,2,2,32); run(64,64,2,4,32); run(128,64,4,2,32)
# Emulates the CTA-level index logic of block_gemm_tc_kernel (permuted store) and blast_stage1_tc_kernel
# (segments, fp32 stash, mix item mapping, z store predicates) with numpy, against the CPU semantics.

# Part 2: CTA-level logic of the block GEMM and the BLAST stage-1 kernel.
rng=np.random.default_rng(1)

def load_tile2(mat, base_row, rows_valid, seg_col0, k0, K, ROWS):
    # returns ROWS x BK tile; chunk (row, c) valid iff row < rows_valid and k0 + 8c < K
    t=np.zeros((ROWS,BK))
    for row in range(ROWS):
        for c in range(4):
            k=k0+c*8
            if row<rows_valid and k<K:
                t[row,c*8:c*8+8]=mat[base_row+row, seg_col0+k:seg_col0+k+8]
    return t

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

def blast_stage1(M,b,r,ib,x,ldx,V,S,z,BM,BN,G=1):
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
        Xp=np.pad(Xm,((0,BM),(0,8))); Vp=np.pad(Vm,((0,BN),(0,8)))
        # A operand: rows from m0, segment column offset ib; B: V rows n0 + seg*r (seg offset r*ib elements = r rows)
        def tc_blast(group):  # TcCore::run for one warp group: segments group, group+G, ...
            ktp=(ib+BK-1)//BK; acc=np.zeros((BM,BN))
            my_segs=(b-group+G-1)//G if group<b else 0
            for ls in range(my_segs):
                seg=group+ls*G
                for kt in range(ktp):
                    a=load_tile2(Xp,m0,M-m0,seg*ib,kt*BK,ib,BM)
                    bt=load_tile2(Vp,n0+seg*r,r-n0,0,kt*BK,ib,BN)
                    acc+=a@bt.T
                hook(seg,acc.copy())
                if ls+1<my_segs: acc[:]=0
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

def check_blast(n,i,o,b,r,BM,BN,ldx_pad=0,G=1):
    ib,ob=i//b,o//b
    x=rng.standard_normal((n,i)); U=rng.standard_normal((b,ob,r)); S=rng.standard_normal((b,b,r)); V=rng.standard_normal((b,r,ib))
    y=[x[:,j*ib:(j+1)*ib]@V[j].T for j in range(b)]
    ref=np.concatenate([sum(y[j]*S[k,j] for j in range(b))@U[k].T for k in range(b)],axis=1)
    ldx=i+ldx_pad; xb=np.zeros((n,ldx)); xb[:,:i]=x
    z=np.full(n*b*r,np.nan)
    blast_stage1(n,b,r,ib,xb.ravel(),ldx,V.ravel(),S.ravel(),z,BM,BN,G)
    assert not np.isnan(z).any(), "z not fully written"
    ybuf=np.full(n*o,np.nan)
    block_gemm(n,ob,r,b,z,b*r,r,U.ravel(),r,ob*r,ybuf,o,ob,0,0,None,0,lambda v:v,64,64)
    err=np.abs(ybuf.reshape(n,o)-ref).max()
    print("blast",n,i,o,b,r,BM,BN,"groups",G,"err",err); assert err<1e-8

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

# Part 3: the single-launch layer kernel (kernels/blr_onelaunch.cu): ticket -> work item decoding for both
# stages, the ready-counter protocol, and the reset by the last CTA. Simulates CTAs as coroutines run in
# random interleavings on a machine with a limited number of resident CTAs (CTAs start in ticket order as
# slots free up, as the hardware does not guarantee but the ticket counter enforces); checks every tile
# runs exactly once, a stage-2 tile reads only rows whose stage-1 tiles have all finished, nothing
# deadlocks, and the counters end at zero.
import random

def one_launch_sim(M, kind, G, bm1, bn1, bm2, bn2, N1, batch1, N2, batch2, slots, seed):
    rnd = random.Random(seed)
    m_tiles1 = -(-M // bm1)
    if kind == 'blast':
        n_tiles1 = -(-N1 // bn1); per_tm1 = n_tiles1; n1_items = m_tiles1 * n_tiles1; n1_tickets = n1_items
    else:
        n_tiles1 = -(-N1 // bn1); per_tm1 = n_tiles1 * batch1; n1_items = m_tiles1 * per_tm1
        n1_tickets = -(-n1_items // G)
    m_tiles2 = -(-M // bm2); n_tiles2 = -(-N2 // bn2); per_tm2 = n_tiles2 * batch2
    n2_items = m_tiles2 * per_tm2; n2_tickets = -(-n2_items // G)
    grid = n1_tickets + n2_tickets
    sync = [0] * (2 + m_tiles1)
    done1 = set(); done2 = set()
    row_ready = [0] * M  # stage-1 tiles finished covering each row (must reach per_tm1 before stage 2 reads)

    def cta():
        t = sync[0]; sync[0] += 1; yield
        if t < n1_tickets:
            groups = [0] if kind == 'blast' else range(G)
            for g in groups:
                item = t if kind == 'blast' else t * G + g
                if item >= n1_items: continue
                tm = item // per_tm1; rest = item - tm * per_tm1
                q, tn = divmod(rest, n_tiles1)
                assert (tm, q, tn) not in done1; done1.add((tm, q, tn))
                yield  # the tile's work
                for row in range(tm * bm1, min(M, (tm + 1) * bm1)): row_ready[row] += 1
                sync[2 + tm] += 1; yield
        else:
            for g in range(G):
                item = (t - n1_tickets) * G + g
                if item >= n2_items: continue
                tm = item // per_tm2; rest = item - tm * per_tm2
                q, tn = divmod(rest, n_tiles2)
                m0 = tm * bm2; first = m0 // bm1; last = min(M - 1, m0 + bm2 - 1) // bm1
                for tt in range(first, last + 1):
                    while sync[2 + tt] < per_tm1: yield  # spin
                for row in range(m0, min(M, m0 + bm2)):
                    assert row_ready[row] == per_tm1, "stage 2 read a row before stage 1 finished it"
                assert (tm, q, tn) not in done2; done2.add((tm, q, tn))
                yield
        d = sync[1]; sync[1] += 1
        if d == grid - 1:
            for i in range(len(sync)): sync[i] = 0
        yield

    waiting = grid; running = []; steps = 0
    while waiting or running:
        while waiting and len(running) < slots:
            running.append(cta()); waiting -= 1
        c = rnd.choice(running)
        try: next(c)
        except StopIteration: running.remove(c)
        steps += 1
        assert steps < 10_000_000, "no progress: deadlock"
    assert len(done1) == n1_items and len(done2) == n2_items
    assert all(v == 0 for v in sync), "counters not reset"
    return grid

for seed, args in enumerate([
        (512, 'blast', 3, 32, 32, 32, 64, 256, 1, 512, 9, 264),   # DiT fc1 512 tokens, config 1
        (197, 'blast', 3, 32, 32, 32, 64, 128, 1, 1024, 3, 264),  # ViT fc1, config 1
        (197, 'blast', 1, 32, 32, 64, 64, 128, 1, 1024, 3, 3),    # few slots: serial-ish
        (1, 'blast', 1, 32, 32, 32, 64, 96, 1, 48, 9, 1),         # one token, one slot
        (513, 'gemm', 1, 32, 64, 32, 64, 128, 4, 768, 4, 100),    # Monarch ViT-like, config 4
        (197, 'gemm', 3, 32, 64, 32, 64, 128, 4, 768, 4, 7),      # config 6, few slots
        (100, 'gemm', 1, 64, 64, 64, 64, 48, 1, 192, 1, 2),       # low-rank, config 5
        (77, 'gemm', 1, 64, 64, 32, 64, 48, 1, 192, 1, 5)]):      # bm2 < bm1 (rows span part of a tile)
    g = one_launch_sim(*args, seed=seed)
    print("one-launch schedule", args[:3], "grid", g, "ok")
