"""The fused kernels of the compile stage, one rule per file (listed in :data:`deploy.tvm.fusion.FUSION_RULES`)."""
