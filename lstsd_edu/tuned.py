"""Each method's own settings per dataset, as `lstsd-edu tune` chose them (written by
`benchmarks/tuned_presets.py` from the tuning results; do not edit by hand).

The search gave every method the same number of trials and scored them on the noisy validation
split with the test split removed (see tuning.py); the file named above each dataset holds the
command, the search spaces, every trial and the fresh-seed test results. `experiments.preset(dataset,
method)` applies these values over the dataset's starting point; a dataset or method missing here
takes the starting point's values.
"""

TUNED: dict[str, dict[str, dict]] = {
    # benchmarks/results/tuning_digits/tuning.md
    "digits": {
        "ce": {"lr": 0.012290175376727249, "weight_decay": 0.008133501251212226},
        "ls": {
            "lr": 0.018306394207862307,
            "weight_decay": 0.00020421024881889704,
            "label_smoothing": 0.33885268948222996,
        },
        "short": {"lr": 0.05, "weight_decay": 0.0005, "temperature": 2.0, "ramp": 20, "w_short": 0.5},
        "long": {
            "lr": 0.04370335775478629,
            "weight_decay": 0.010242204444741186,
            "temperature": 1.0,
            "ramp": 12,
            "w_long": 0.17679359366585354,
            "lag": 30,
            "long_mode": "phase",
        },
        "lstsd": {
            "lr": 0.05,
            "weight_decay": 0.0005,
            "temperature": 2.0,
            "ramp": 20,
            "w_long": 0.3,
            "w_short": 0.5,
            "lag": 20,
            "long_mode": "sliding",
        },
        "snapshot": {
            "lr": 0.2315257812366062,
            "weight_decay": 0.0022504783737403943,
            "snapshot_cycles": 3,
            "snapshot_temperature": 1.000119147994155,
            "snapshot_teacher_weight": 1.2929535677328303,
        },
        "born_again": {
            "lr": 0.011784868914844005,
            "weight_decay": 0.0026140410760114832,
            "born_again_weight": 0.5752323173382747,
            "born_again_temperature": 1.5357900623968757,
        },
        "pskd": {"lr": 0.026421477685304347, "weight_decay": 0.000752667570992987, "pskd_alpha": 0.6777063912210863},
        "te": {
            "lr": 0.011669175617305327,
            "weight_decay": 0.0008724681516933753,
            "te_decay": 0.7944655094068928,
            "te_max_weight": 39.69982878246277,
            "te_rampup": 0.2736742671983881,
        },
        "gce": {"lr": 0.05, "weight_decay": 0.0005, "gce_q": 0.7},
        "elr": {"lr": 0.05, "weight_decay": 0.0005, "elr_lambda": 3.0, "elr_beta": 0.7},
    },
    # benchmarks/results/tuning_mnist1d/tuning.md
    "mnist1d": {
        "ce": {"lr": 0.23092310227375798, "weight_decay": 0.0076556733241553735},
        "ls": {"lr": 0.02730629675882607, "weight_decay": 0.020515274906610825, "label_smoothing": 0.26220207384498495},
        "short": {
            "lr": 0.021455906861821333,
            "weight_decay": 0.022423523212619777,
            "temperature": 2.0,
            "ramp": 4,
            "w_short": 0.5977861558341453,
        },
        "long": {
            "lr": 0.05795634278485432,
            "weight_decay": 0.011949190267565312,
            "temperature": 2.0,
            "ramp": 28,
            "w_long": 0.3906362595913524,
            "lag": 13,
            "long_mode": "phase",
        },
        "lstsd": {
            "lr": 0.17673461563314244,
            "weight_decay": 0.005621852055078061,
            "temperature": 1.0,
            "ramp": 20,
            "w_long": 0.7232148438607598,
            "w_short": 0.052916604144930074,
            "lag": 3,
            "long_mode": "sliding",
        },
        "snapshot": {
            "lr": 0.010634552325082439,
            "weight_decay": 0.03518860325010026,
            "snapshot_cycles": 6,
            "snapshot_temperature": 4.924006511580506,
            "snapshot_teacher_weight": 0.8558358683206456,
        },
        "born_again": {
            "lr": 0.035200341366702304,
            "weight_decay": 0.03857106039933756,
            "born_again_weight": 0.47002297207696575,
            "born_again_temperature": 3.143614672322447,
        },
        "pskd": {"lr": 0.0393998784340911, "weight_decay": 0.022289497671552055, "pskd_alpha": 0.3891617750298333},
        "te": {
            "lr": 0.017585361846218953,
            "weight_decay": 0.01802505840352201,
            "te_decay": 0.6467289236054334,
            "te_max_weight": 4.189987330205661,
            "te_rampup": 0.21569808757764194,
        },
        "gce": {"lr": 0.025534991958759773, "weight_decay": 0.0021998768840449786, "gce_q": 0.9441495839201071},
        "elr": {
            "lr": 0.15168731883269568,
            "weight_decay": 0.0020234851235105284,
            "elr_lambda": 2.3872534138289985,
            "elr_beta": 0.5812784604550059,
        },
    },
    # benchmarks/results/tuning_textsynth/tuning.md
    "textsynth": {
        "ce": {"lr": 0.21259297392135534, "weight_decay": 0.0014079141710245085},
        "ls": {
            "lr": 0.3859952026000127,
            "weight_decay": 1.2942857816016234e-05,
            "label_smoothing": 0.25875079005995255,
        },
        "short": {"lr": 0.2, "weight_decay": 0.0005, "temperature": 1.0, "ramp": 8, "w_short": 0.2},
        "long": {
            "lr": 0.2682788281872784,
            "weight_decay": 0.00041552005756644494,
            "temperature": 2.0,
            "ramp": 15,
            "w_long": 0.37417027781591083,
            "lag": 4,
            "long_mode": "sliding",
        },
        "lstsd": {
            "lr": 0.2,
            "weight_decay": 0.0005,
            "temperature": 1.0,
            "ramp": 8,
            "w_long": 0.6,
            "w_short": 0.2,
            "lag": 8,
            "long_mode": "sliding",
        },
        "snapshot": {
            "lr": 0.27457671872039574,
            "weight_decay": 0.00023625252550576323,
            "snapshot_cycles": 4,
            "snapshot_temperature": 5.5093392754810395,
            "snapshot_teacher_weight": 1.6470980235809014,
        },
        "born_again": {
            "lr": 0.4411623070204742,
            "weight_decay": 0.00068370072122426,
            "born_again_weight": 0.3900038834911521,
            "born_again_temperature": 2.612886894056576,
        },
        "pskd": {"lr": 0.24138628930208286, "weight_decay": 0.0011672103698105406, "pskd_alpha": 0.6491633347361859},
        "te": {
            "lr": 0.45598606819422766,
            "weight_decay": 2.6226278378729864e-05,
            "te_decay": 0.738535645918021,
            "te_max_weight": 1.1886712031424502,
            "te_rampup": 0.2495211734321112,
        },
        "gce": {"lr": 0.25119738585834983, "weight_decay": 3.513526767225635e-05, "gce_q": 0.6219213615870736},
        "elr": {
            "lr": 0.15168731883269568,
            "weight_decay": 0.0020234851235105284,
            "elr_lambda": 2.3872534138289985,
            "elr_beta": 0.5812784604550059,
        },
    },
}
