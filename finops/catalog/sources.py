"""Where each data file comes from, and when it was taken (details in data/SOURCES.md)."""

from __future__ import annotations

SNAPSHOT_DATE = "2026-01"
"""Month of the AWS EC2 on-demand snapshot, the oldest price file that others are dated by."""

SOURCES: dict[str, str] = {
    "aws_ec2_gpu_instances.csv": (
        "AWS EC2 GPU/ML instance specs and Linux on-demand USD/h, snapshot 2026-01; from "
        "tsaol/aws-gpu data/all_gpu_instances.js (auto-generated from instances.vantage.sh); "
        "repository MIT, prices are public AWS facts"
    ),
    "aws_spot_advisor_gpu.json": (
        "AWS Spot Instance Advisor feed (mid 2025), Linux rows for the GPU types above; as "
        "committed in alexei-led/spotinfo internal/spot/data/spot-advisor-data.json; AWS public "
        "data, repository Apache-2.0"
    ),
    "aws_sagemaker_hosting.csv": (
        "AWS SageMaker real-time inference pricing page, hand transcription as of 2026-01; "
        "rows marked 'estimated' are EC2 on-demand x 1.4; public AWS prices"
    ),
    "gcp_machines.csv": (
        "GCP Compute Engine VM instance and GPU pricing pages, us-central1 on-demand hand "
        "transcription as of 2026-01; europe-west4 and spot rows estimated (see SOURCES.md); "
        "public GCP prices"
    ),
    "gcp_n1_machines.csv": "GCP N1 per-vCPU and per-GiB rates as of 2026-01; public GCP prices",
    "gcp_attached_gpus.csv": (
        "GCP GPU pricing page (T4, V100 per GPU-hour, on-demand and spot) and GPU machine "
        "types limits, as of 2026-01; public GCP prices"
    ),
    "gcp_tpu.csv": (
        "Cloud TPU pricing page, USD per chip-hour as of 2026-01; spot estimated at 40 % of "
        "on-demand; v6e in 8 more regions from the SkyPilot catalog v7 gcp/vms.csv (commit "
        "017e2502, Cloud Billing Catalog prices incl. spot); public GCP prices, repository "
        "Apache-2.0"
    ),
    "azure_vms.csv": (
        "Azure Linux Virtual Machines pricing page, eastus pay-as-you-go hand transcription as "
        "of 2026-01; westeurope and spot estimated (see SOURCES.md); 7 more US regions from the "
        "SkyPilot catalog v6 azure/vms.csv (commit 098741e7, Azure Retail Prices API incl. "
        "spot); public Azure prices, repository Apache-2.0"
    ),
    "commitment_discounts.csv": (
        "Commitment discounts off on-demand (GCP resource-based CUDs, Azure reservations, AWS "
        "EC2 Instance Savings Plans at the RI rate), all estimated, as of 2026-01; see SOURCES.md"
    ),
    "aws_storage.csv": (
        "Amazon EBS and S3 pricing pages, USD per unit-month for four regions, hand "
        "transcription as of 2026-01; public AWS prices"
    ),
    "object_storage.csv": (
        "GCS (Standard, regional) and Azure Blob Storage (hot, LRS) pricing pages, USD per "
        "GB-month, hand transcription as of 2026-01; public GCP and Azure prices"
    ),
    "network_prices.csv": (
        "NAT gateway, public IPv4 and Cloud NAT prices: AWS/Azure rows seen in the FinOps "
        "Foundation's FOCUS 1.0 sample billing (2024-09, CC BY 4.0), the rest from the AWS VPC, "
        "Cloud NAT and Azure NAT Gateway pricing pages as of 2026-01; public prices"
    ),
    "fixed_charges.csv": (
        "CloudWatch, VPC, PrivateLink, Lambda, SageMaker (AWS), Compute Engine disks, Cloud "
        "NAT, Cloud Scheduler, Cloud Run, Cloud Logging (GCP), Managed Disks and NAT Gateway "
        "(Azure) pricing pages, the charges besides instances, hand transcription as of "
        "2026-01 (europe-west4 disks estimated); public prices"
    ),
    "serverless.csv": (
        "SageMaker Serverless Inference (per GB-second, data processed) and Cloud Run Tier 1 "
        "(vCPU-s, GiB-s, requests, NVIDIA L4 GPU-s) pricing pages, hand transcription as of "
        "2026-01; public AWS and GCP prices"
    ),
    "accelerators.csv": (
        "Vendor datasheets (NVIDIA, AWS Neuron, Google Cloud TPU, Qualcomm, AMD); throughput "
        "relative to V100 derived as sqrt(compute ratio x bandwidth ratio); facts, no licence"
    ),
}
