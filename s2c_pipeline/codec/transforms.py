"""Analysis/synthesis and hyper transforms built from S2C blocks.

g_a: four stride-2 3x3 convs with a block stage after each of the first three (H/2, H/4, H/8);
g_s mirrors it with sub-pixel upsampling. h_a/h_s follow CMIC/GLIC: two stride-2 steps with
``hyper_depth`` separable-conv blocks between them. Total stride of y is 16, of z is 64.
"""

from __future__ import annotations

from compressai.layers import conv3x3, subpel_conv3x3
from torch import nn

from s2c_pipeline.codec.blocks import S2CBlock
from s2c_pipeline.codec.config import ModelConfig


def _stage(cfg: ModelConfig, dim: int, depth: int, spatial: str) -> list[nn.Module]:
    return [
        S2CBlock(
            dim,
            spatial=spatial,
            ffn=cfg.ffn,
            ffn_ratio=cfg.ffn_ratio,
            kernel_size=cfg.kernel_size,
            window=cfg.window,
        )
        for _ in range(depth)
    ]


def _hyper_stage(cfg: ModelConfig) -> list[nn.Module]:
    n = cfg.hyper_channels
    return [
        S2CBlock(n, spatial="sepconv", ffn=cfg.ffn, ffn_ratio=cfg.hyper_ffn_ratio) for _ in range(cfg.hyper_depth)
    ]


def analysis_transform(cfg: ModelConfig) -> nn.Sequential:
    c1, c2, c3 = cfg.widths
    layers: list[nn.Module] = [conv3x3(3, c1, stride=2)]
    layers += _stage(cfg, c1, cfg.depths[0], cfg.spatial[0])
    layers += [conv3x3(c1, c2, stride=2)]
    layers += _stage(cfg, c2, cfg.depths[1], cfg.spatial[1])
    layers += [conv3x3(c2, c3, stride=2)]
    layers += _stage(cfg, c3, cfg.depths[2], cfg.spatial[2])
    layers += [conv3x3(c3, cfg.latent_channels, stride=2)]
    return nn.Sequential(*layers)


def synthesis_transform(cfg: ModelConfig) -> nn.Sequential:
    c1, c2, c3 = cfg.widths
    layers: list[nn.Module] = [subpel_conv3x3(cfg.latent_channels, c3, 2)]
    layers += _stage(cfg, c3, cfg.depths[2], cfg.spatial[2])
    layers += [subpel_conv3x3(c3, c2, 2)]
    layers += _stage(cfg, c2, cfg.depths[1], cfg.spatial[1])
    layers += [subpel_conv3x3(c2, c1, 2)]
    layers += _stage(cfg, c1, cfg.depths[0], cfg.spatial[0])
    layers += [subpel_conv3x3(c1, 3, 2)]
    return nn.Sequential(*layers)


def hyper_analysis(cfg: ModelConfig) -> nn.Sequential:
    m, n = cfg.latent_channels, cfg.hyper_channels
    return nn.Sequential(
        conv3x3(m, n),
        *_hyper_stage(cfg),
        conv3x3(n, n, stride=2),
        *_hyper_stage(cfg),
        conv3x3(n, n, stride=2),
    )


def hyper_synthesis(cfg: ModelConfig) -> nn.Sequential:
    n = cfg.hyper_channels
    return nn.Sequential(
        subpel_conv3x3(n, n, 2),
        *_hyper_stage(cfg),
        subpel_conv3x3(n, n, 2),
        *_hyper_stage(cfg),
        conv3x3(n, 2 * n),
    )
