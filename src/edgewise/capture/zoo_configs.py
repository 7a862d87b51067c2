"""Architecture configs of the zoo models, as shipped by their authors, written as dicts.

Each dict is the `config.json` the model's Hugging Face repository publishes (keys the
constructors ignore, such as `_class_name` or `id2label`, are left out), so building a
model from it gives the published architecture with no download and no weights.
"""

from __future__ import annotations

from typing import Any

Config = dict[str, Any]

# stable-diffusion-v1-5/stable-diffusion-v1-5, unet/config.json (same U-Net as SD 1.4)
SD15_UNET: Config = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                         "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                       "CrossAttnUpBlock2D"],
}  # fmt: skip

# nota-ai/bk-sdm-base, unet/config.json: SD 1.5's U-Net with one residual + attention pair
# removed from every down stage and one from every up stage (diffusers builds
# layers_per_block + 1 per up stage); the mid stage is kept
BK_SDM_BASE_UNET: Config = {**SD15_UNET, "layers_per_block": 1}
# nota-ai/bk-sdm-small: BK-SDM-Base without the mid stage (Kim et al. 2023, Fig. 2)
BK_SDM_SMALL_UNET: Config = {**BK_SDM_BASE_UNET, "mid_block_type": None}
# nota-ai/bk-sdm-tiny: BK-SDM-Small without the innermost stage (the 1280-channel
# DownBlock2D and UpBlock2D at 1/64 of the image)
BK_SDM_TINY_UNET: Config = {
    **BK_SDM_SMALL_UNET,
    "block_out_channels": [320, 640, 1280],
    "down_block_types": ["CrossAttnDownBlock2D"] * 3,
    "up_block_types": ["CrossAttnUpBlock2D"] * 3,
}

# stabilityai/stable-diffusion-2-1, unet/config.json: SD 1.5's layout with per-level head
# widths, OpenCLIP-H text features (1024) and linear projections in the transformers.
SD21_UNET: Config = {
    **SD15_UNET,
    "attention_head_dim": [5, 10, 20, 20],
    "cross_attention_dim": 1024,
    "dual_cross_attention": False,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "sample_size": 96,
    "upcast_attention": True,
    "use_linear_projection": True,
}

# stabilityai/stable-diffusion-xl-base-1.0, unet/config.json
SDXL_UNET: Config = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "class_embed_type": None,
    "class_embeddings_concat": False,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "cross_attention_dim": 2048,
    "cross_attention_norm": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_only_cross_attention": None,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_attention_heads": None,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default",
    "sample_size": 128,
    "time_cond_proj_dim": None,
    "time_embedding_act_fn": None,
    "time_embedding_dim": None,
    "time_embedding_type": "positional",
    "timestep_post_act": None,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "upcast_attention": None,
    "use_linear_projection": True,
}

# stable-diffusion-v1-5/stable-diffusion-v1-5, vae/config.json
SD15_VAE: Config = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 512,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}

# stable-diffusion-v1-5/stable-diffusion-v1-5, text_encoder/config.json: the text tower of
# openai/clip-vit-large-patch14 (eos_token_id 2 selects the legacy argmax pooling).
CLIP_L14_TEXT: Config = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-05,
    "projection_dim": 768,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}

# stabilityai/stable-diffusion-xl-base-1.0, text_encoder_2/config.json: the OpenCLIP
# ViT-bigG/14 text tower (CLIPTextModelWithProjection)
OPENCLIP_BIGG_TEXT: Config = {
    "vocab_size": 49408,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-05,
    "projection_dim": 1280,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "pad_token_id": 1,
}

# openai/clip-vit-large-patch14, config.json "vision_config" (the -336 repo differs only
# in image_size 336)
CLIP_L14_VISION: Config = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 14,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-05,
    "projection_dim": 768,
}

# google/vit-base-patch16-224 config.json: ViT-B/16, the architecture of torchvision's
# vit_b_16 (same parameter tensors, 1000-class head)
VIT_B16: Config = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "image_size": 224,
    "patch_size": 16,
    "num_channels": 3,
    "qkv_bias": True,
    "num_labels": 1000,
}

# google/vivit-b-16x2-kinetics400 config.json: spatio-temporal attention (ViViT model 1),
# tubelets of 2 frames x 16 x 16 pixels, Kinetics-400 head
VIVIT_B: Config = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu_fast",
    "layer_norm_eps": 1e-06,
    "image_size": 224,
    "num_frames": 32,
    "tubelet_size": [2, 16, 16],
    "num_channels": 3,
    "qkv_bias": True,
    "num_labels": 400,
}

# microsoft/resnet-50 config.json: ResNet-50 v1.5 (stride in the 3x3 conv), the
# architecture of torchvision's resnet50
RESNET50: Config = {
    "num_channels": 3,
    "embedding_size": 64,
    "hidden_sizes": [256, 512, 1024, 2048],
    "depths": [3, 4, 6, 3],
    "layer_type": "bottleneck",
    "hidden_act": "relu",
    "downsample_in_first_stage": False,
    "downsample_in_bottleneck": False,
    "num_labels": 1000,
}

# facebook/DiT-XL-2-256, transformer/config.json: DiT-XL/2 on 32x32x4 latents, learned
# sigma (8 output channels), 1000 ImageNet classes
DIT_XL2_256: Config = {
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_head_dim": 72,
    "dropout": 0.0,
    "in_channels": 4,
    "norm_elementwise_affine": False,
    "norm_eps": 1e-06,
    "norm_num_groups": 32,
    "norm_type": "ada_norm_zero",
    "num_attention_heads": 16,
    "num_embeds_ada_norm": 1000,
    "num_layers": 28,
    "out_channels": 8,
    "patch_size": 2,
    "sample_size": 32,
    "upcast_attention": False,
}

# microsoft/resnet-18 config.json: ResNet-18 (basic blocks), the architecture of
# torchvision's resnet18
RESNET18: Config = {
    **RESNET50,
    "hidden_sizes": [64, 128, 256, 512],
    "depths": [2, 2, 2, 2],
    "layer_type": "basic",
}

# google/efficientnet-b0 config.json (EfficientNetConfig's B7 defaults with the B0 entry of
# transformers' convert_efficientnet_to_pytorch.py CONFIG_MAP: width and depth 1.0, 224 px,
# head 1280, dropout 0.2): the architecture of keras' and torchvision's efficientnet_b0
EFFICIENTNET_B0: Config = {
    "num_channels": 3,
    "image_size": 224,
    "width_coefficient": 1.0,
    "depth_coefficient": 1.0,
    "depth_divisor": 8,
    "kernel_sizes": [3, 3, 5, 3, 5, 5, 3],
    "in_channels": [32, 16, 24, 40, 80, 112, 192],
    "out_channels": [16, 24, 40, 80, 112, 192, 320],
    "depthwise_padding": [],
    "strides": [1, 2, 2, 2, 1, 2, 1],
    "num_block_repeats": [1, 2, 2, 3, 3, 4, 1],
    "expand_ratios": [1, 6, 6, 6, 6, 6, 6],
    "squeeze_expansion_ratio": 0.25,
    "hidden_act": "swish",
    "hidden_dim": 1280,
    "pooling_type": "mean",
    "batch_norm_eps": 0.001,
    "batch_norm_momentum": 0.99,
    "dropout_rate": 0.2,
    "drop_connect_rate": 0.2,
    "num_labels": 1000,
}

# facebook/convnext-tiny-224 config.json: ConvNeXt-T, the architecture of torchvision's
# convnext_tiny
CONVNEXT_TINY: Config = {
    "num_channels": 3,
    "patch_size": 4,
    "num_stages": 4,
    "hidden_sizes": [96, 192, 384, 768],
    "depths": [3, 3, 9, 3],
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "layer_scale_init_value": 1e-06,
    "drop_path_rate": 0.0,
    "image_size": 224,
    "num_labels": 1000,
}

# facebook/deit-small-patch16-224 config.json: DeiT-S without the distillation token, a
# ViTForImageClassification checkpoint (ViT-S/16: d = 384, 6 heads, MLP 1536)
DEIT_SMALL: Config = {
    **VIT_B16,
    "hidden_size": 384,
    "num_attention_heads": 6,
    "intermediate_size": 1536,
}

# microsoft/swin-tiny-patch4-window7-224 config.json: Swin-T, the architecture of
# torchvision's swin_t
SWIN_TINY: Config = {
    "image_size": 224,
    "patch_size": 4,
    "num_channels": 3,
    "embed_dim": 96,
    "depths": [2, 2, 6, 2],
    "num_heads": [3, 6, 12, 24],
    "window_size": 7,
    "mlp_ratio": 4.0,
    "qkv_bias": True,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "drop_path_rate": 0.1,
    "hidden_act": "gelu",
    "use_absolute_embeddings": False,
    "layer_norm_eps": 1e-05,
    "encoder_stride": 32,
    "num_labels": 1000,
}

# apple/mobilevit-small config.json: MobileViT-S, the ml-cvnets mobilevit_s (image_size is
# the 256 px it was trained at; the model takes other sizes, image_size builds nothing)
MOBILEVIT_S: Config = {
    "num_channels": 3,
    "image_size": 256,
    "patch_size": 2,
    "hidden_sizes": [144, 192, 240],
    "neck_hidden_sizes": [16, 32, 64, 96, 128, 160, 640],
    "num_attention_heads": 4,
    "mlp_ratio": 2.0,
    "expand_ratio": 4.0,
    "hidden_act": "silu",
    "conv_kernel_size": 3,
    "output_stride": 32,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.0,
    "classifier_dropout_prob": 0.1,
    "layer_norm_eps": 1e-05,
    "qkv_bias": True,
    "num_labels": 1000,
}

# google-bert/bert-base-uncased config.json: BERT-Base, 12 layers, d = 768, 12 heads
BERT_BASE: Config = {
    "vocab_size": 30522,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}

# openai/whisper-tiny config.json, its architecture keys (token ids left out): 4 encoder
# and 4 decoder layers, d = 384, 6 heads, 80 mel bins, 1500 audio positions (30 s)
WHISPER_TINY: Config = {
    "vocab_size": 51865,
    "num_mel_bins": 80,
    "encoder_layers": 4,
    "encoder_attention_heads": 6,
    "encoder_ffn_dim": 1536,
    "decoder_layers": 4,
    "decoder_attention_heads": 6,
    "decoder_ffn_dim": 1536,
    "d_model": 384,
    "activation_function": "gelu",
    "max_source_positions": 1500,
    "max_target_positions": 448,
    "scale_embedding": False,
}


# KOALA (Lee et al. 2024, arXiv:2312.04005): the SDXL U-Net with one residual + transformer
# pair per stage removed (layers_per_block 1) and the deepest stage's transformer blocks
# cut from 10 to 5 (KOALA-700M, also without the mid block) or 6 (KOALA-1B, mid block
# kept, whose transformer takes the deepest stage's depth)
KOALA_700M_UNET: Config = {
    **SDXL_UNET, "layers_per_block": 1, "transformer_layers_per_block": [1, 2, 5],
    "mid_block_type": None,
}  # fmt: skip
KOALA_1B_UNET: Config = {
    **SDXL_UNET,
    "layers_per_block": 1,
    "transformer_layers_per_block": [1, 2, 6],
}


# facebook/sam-vit-huge config.json, vision_config: the ViT-H/16 image encoder at 1024 px,
# windowed attention (14 x 14) but for four global blocks, relative position tables, and
# the 256-channel neck
SAM_VIT_H: Config = {
    "hidden_size": 1280, "num_hidden_layers": 32, "num_attention_heads": 16,
    "global_attn_indexes": [7, 15, 23, 31], "output_channels": 256, "window_size": 14,
    "image_size": 1024, "patch_size": 16, "mlp_ratio": 4.0, "use_rel_pos": True,
}  # fmt: skip

# state-spaces/mamba-130m-hf config.json: 24 Mamba blocks of width 768 (inner 1536), state
# 16, dt rank 48, GPT-NeoX vocabulary padded to 50280
MAMBA_130M: Config = {
    "vocab_size": 50280, "hidden_size": 768, "state_size": 16, "num_hidden_layers": 24,
    "expand": 2, "conv_kernel": 4, "use_bias": False, "use_conv_bias": True,
    "time_step_rank": 48, "residual_in_fp32": True,
}  # fmt: skip
