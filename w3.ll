define internal void @graphad_c760bd31abd97c74e1774ec69426b9f333f1132d.0(double* noalias %i0, double* noalias %i1, double* noalias %o0, double* noalias %o1, double* noalias %o2, double* noalias %tmp) alwaysinline nounwind {
entry:
  %v0.p = getelementptr inbounds double, double* %i0, i64 0
  %v0 = load double, double* %v0.p
  %v2.p = getelementptr inbounds double, double* %i1, i64 0
  %v2 = load double, double* %v2.p
  %v1 = fmul double %v0, %v0
  %v3 = fmul double %v2, %v2
  %v4 = fadd double %v1, %v3
  %v5 = fneg double %v4
  %v6 = call double @llvm.exp.f64(double %v5) #9000
  %v8 = fmul double %v0, 0x4008000000000000
  %v9 = call double @llvm.sin.f64(double %v8) #9001
  %v10 = fmul double %v6, %v9
  %v12 = fmul double %v2, 0x4000000000000000
  %v13 = call double @llvm.cos.f64(double %v12) #9002
  %v14 = fmul double %v10, %v13
  %v15 = fmul double %v1, %v3
  %v17 = fadd double %v15, 0x3FF0000000000000
  %v18 = call double @llvm.log.f64(double %v17) #9003
  %v19 = fadd double %v14, %v18
  %s19.o0.0 = getelementptr inbounds double, double* %o0, i64 0
  store double %v19, double* %s19.o0.0
  %v20.p = fmul double %v6, %v13
  %v20.a = fcmp oeq double %v6, 0.0
  %v20.b = fcmp oeq double %v13, 0.0
  %v20.z = or i1 %v20.a, %v20.b
  %v20 = select i1 %v20.z, double 0.0, double %v20.p
  %v21 = call double @llvm.cos.f64(double %v8) #9002
  %v22.p = fmul double %v20, %v21
  %v22.a = fcmp oeq double %v20, 0.0
  %v22.b = fcmp oeq double %v21, 0.0
  %v22.z = or i1 %v22.a, %v22.b
  %v22 = select i1 %v22.z, double 0.0, double %v22.p
  %v23 = fmul double 0x4008000000000000, %v22
  %v24 = fdiv double 0x3FF0000000000000, %v17
  %v26.c = fcmp oge double %v17, 0x0000000000000000
  %v26 = uitofp i1 %v26.c to double
  %v28.c = fcmp une double %v26, 0.0
  %v28 = select i1 %v28.c, double 0x3FF0000000000000, double 0x7FF8000000000000
  %v29 = fmul double %v24, %v28
  %v30.p = fmul double %v3, %v29
  %v30.a = fcmp oeq double %v3, 0.0
  %v30.b = fcmp oeq double %v29, 0.0
  %v30.z = or i1 %v30.a, %v30.b
  %v30 = select i1 %v30.z, double 0.0, double %v30.p
  %v31.p = fmul double %v9, %v13
  %v31.a = fcmp oeq double %v9, 0.0
  %v31.b = fcmp oeq double %v13, 0.0
  %v31.z = or i1 %v31.a, %v31.b
  %v31 = select i1 %v31.z, double 0.0, double %v31.p
  %v32.p = fmul double %v6, %v31
  %v32.a = fcmp oeq double %v6, 0.0
  %v32.b = fcmp oeq double %v31, 0.0
  %v32.z = or i1 %v32.a, %v32.b
  %v32 = select i1 %v32.z, double 0.0, double %v32.p
  %v33 = fsub double %v30, %v32
  %v34 = fmul double %v0, 0x4000000000000000
  %v35.p = fmul double %v33, %v34
  %v35.a = fcmp oeq double %v33, 0.0
  %v35.b = fcmp oeq double %v34, 0.0
  %v35.z = or i1 %v35.a, %v35.b
  %v35 = select i1 %v35.z, double 0.0, double %v35.p
  %v36 = fadd double %v23, %v35
  %s36.o1.0 = getelementptr inbounds double, double* %o1, i64 0
  store double %v36, double* %s36.o1.0
  %v37 = call double @llvm.sin.f64(double %v12) #9001
  %v38 = fneg double %v37
  %v39.p = fmul double %v10, %v38
  %v39.a = fcmp oeq double %v10, 0.0
  %v39.b = fcmp oeq double %v38, 0.0
  %v39.z = or i1 %v39.a, %v39.b
  %v39 = select i1 %v39.z, double 0.0, double %v39.p
  %v40 = fmul double 0x4000000000000000, %v39
  %v41.p = fmul double %v1, %v29
  %v41.a = fcmp oeq double %v1, 0.0
  %v41.b = fcmp oeq double %v29, 0.0
  %v41.z = or i1 %v41.a, %v41.b
  %v41 = select i1 %v41.z, double 0.0, double %v41.p
  %v42 = fsub double %v41, %v32
  %v43.p = fmul double %v12, %v42
  %v43.a = fcmp oeq double %v12, 0.0
  %v43.b = fcmp oeq double %v42, 0.0
  %v43.z = or i1 %v43.a, %v43.b
  %v43 = select i1 %v43.z, double 0.0, double %v43.p
  %v44 = fadd double %v40, %v43
  %s44.o2.0 = getelementptr inbounds double, double* %o2, i64 0
  store double %v44, double* %s44.o2.0
  ret void
}
define void @graphad_c760bd31abd97c74e1774ec69426b9f333f1132d.batch(i64 %lo, i64 %hi, double* noalias %i0, double* noalias %i1, double* noalias %o0, double* noalias %o1, double* noalias %o2) nounwind {
entry:
  %any = icmp slt i64 %lo, %hi
  br i1 %any, label %loop, label %done
loop:
  %i = phi i64 [%lo, %entry], [%i.next, %loop]
  %i0.k = mul nuw nsw i64 %i, 1
  %i0.at = getelementptr inbounds double, double* %i0, i64 %i0.k
  %i1.k = mul nuw nsw i64 %i, 1
  %i1.at = getelementptr inbounds double, double* %i1, i64 %i1.k
  %o0.k = mul nuw nsw i64 %i, 1
  %o0.at = getelementptr inbounds double, double* %o0, i64 %o0.k
  %o1.k = mul nuw nsw i64 %i, 1
  %o1.at = getelementptr inbounds double, double* %o1, i64 %o1.k
  %o2.k = mul nuw nsw i64 %i, 1
  %o2.at = getelementptr inbounds double, double* %o2, i64 %o2.k
  call void @graphad_c760bd31abd97c74e1774ec69426b9f333f1132d(double* %i0.at, double* %i1.at, double* %o0.at, double* %o1.at, double* %o2.at)
  %i.next = add nuw nsw i64 %i, 1
  %more = icmp slt i64 %i.next, %hi
  br i1 %more, label %loop, label %done
done:
  ret void
}
define void @graphad_c760bd31abd97c74e1774ec69426b9f333f1132d(double* noalias %i0, double* noalias %i1, double* noalias %o0, double* noalias %o1, double* noalias %o2) nounwind {
entry:
  %tmp = alloca double, i64 1
  call void @graphad_c760bd31abd97c74e1774ec69426b9f333f1132d.0(double* %i0, double* %i1, double* %o0, double* %o1, double* %o2, double* %tmp)
  ret void
}
declare double @llvm.cos.f64(double)
declare double @llvm.exp.f64(double)
declare double @llvm.log.f64(double)
declare double @llvm.sin.f64(double)
declare <2 x double> @_ZGVbN2v_exp(<2 x double>)
declare <4 x double> @_ZGVdN4v_exp(<4 x double>)
declare <8 x double> @_ZGVeN8v_exp(<8 x double>)
attributes #9000 = { "vector-function-abi-variant"="_ZGV_LLVM_N2v_llvm.exp.f64(_ZGVbN2v_exp),_ZGV_LLVM_N4v_llvm.exp.f64(_ZGVdN4v_exp),_ZGV_LLVM_N8v_llvm.exp.f64(_ZGVeN8v_exp)" }
declare <2 x double> @_ZGVbN2v_sin(<2 x double>)
declare <4 x double> @_ZGVdN4v_sin(<4 x double>)
declare <8 x double> @_ZGVeN8v_sin(<8 x double>)
attributes #9001 = { "vector-function-abi-variant"="_ZGV_LLVM_N2v_llvm.sin.f64(_ZGVbN2v_sin),_ZGV_LLVM_N4v_llvm.sin.f64(_ZGVdN4v_sin),_ZGV_LLVM_N8v_llvm.sin.f64(_ZGVeN8v_sin)" }
declare <2 x double> @_ZGVbN2v_cos(<2 x double>)
declare <4 x double> @_ZGVdN4v_cos(<4 x double>)
declare <8 x double> @_ZGVeN8v_cos(<8 x double>)
attributes #9002 = { "vector-function-abi-variant"="_ZGV_LLVM_N2v_llvm.cos.f64(_ZGVbN2v_cos),_ZGV_LLVM_N4v_llvm.cos.f64(_ZGVdN4v_cos),_ZGV_LLVM_N8v_llvm.cos.f64(_ZGVeN8v_cos)" }
declare <2 x double> @_ZGVbN2v_log(<2 x double>)
declare <4 x double> @_ZGVdN4v_log(<4 x double>)
declare <8 x double> @_ZGVeN8v_log(<8 x double>)
attributes #9003 = { "vector-function-abi-variant"="_ZGV_LLVM_N2v_llvm.log.f64(_ZGVbN2v_log),_ZGV_LLVM_N4v_llvm.log.f64(_ZGVdN4v_log),_ZGV_LLVM_N8v_llvm.log.f64(_ZGVeN8v_log)" }
@llvm.compiler.used = appending global [12 x i8*] [i8* bitcast (<2 x double> (<2 x double>)* @_ZGVbN2v_exp to i8*), i8* bitcast (<4 x double> (<4 x double>)* @_ZGVdN4v_exp to i8*), i8* bitcast (<8 x double> (<8 x double>)* @_ZGVeN8v_exp to i8*), i8* bitcast (<2 x double> (<2 x double>)* @_ZGVbN2v_sin to i8*), i8* bitcast (<4 x double> (<4 x double>)* @_ZGVdN4v_sin to i8*), i8* bitcast (<8 x double> (<8 x double>)* @_ZGVeN8v_sin to i8*), i8* bitcast (<2 x double> (<2 x double>)* @_ZGVbN2v_cos to i8*), i8* bitcast (<4 x double> (<4 x double>)* @_ZGVdN4v_cos to i8*), i8* bitcast (<8 x double> (<8 x double>)* @_ZGVeN8v_cos to i8*), i8* bitcast (<2 x double> (<2 x double>)* @_ZGVbN2v_log to i8*), i8* bitcast (<4 x double> (<4 x double>)* @_ZGVdN4v_log to i8*), i8* bitcast (<8 x double> (<8 x double>)* @_ZGVeN8v_log to i8*)], section "llvm.metadata"
