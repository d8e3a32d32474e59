"""The 33 rows of the reliability matrix (``docs/reliability-matrix.md`` in the shared docs) and the
tests that cover a row without saying so themselves.

A test says which row it covers in one of two ways, and the plugin reads both:

- ``@pytest.mark.reliability(row=N, fault="…")`` (repeat the marker for several rows);
- ``matrix row N`` in its docstring, up to the first colon (``matrix row 7 and 32: …``,
  ``matrix row 3 (and 12): …``); the fault is the docstring's text after that colon.

``COVERED_ELSEWHERE`` lists tests written before either existed (node id → rows and fault), so the
report is complete without editing files other people are changing. Prefer the marker in new tests.
"""

from __future__ import annotations

ROWS: dict[int, tuple[str, str]] = {
    1: ("kill -9 training worker mid-epoch", "job interrupted, MLflow run KILLED, verified checkpoint kept, Resume offered"),
    2: ("Kill while a checkpoint is being written", "previous generation loads; stale tmp swept"),
    3: ("GUI/app killed while the worker runs", "worker dies with the app or is adopted; jobs reconciled on restart"),
    4: ("Resume semantics", "Resume only for interrupted jobs with optimizer state; no duplicate epochs"),
    5: ("Disk full while saving checkpoint / metrics / log", "job failed: disk full; previous checkpoint intact; DB consistent"),
    6: ("SQLite contention GUI-read vs worker-write", "no `database is locked` surfaced; bounded retries"),
    7: ("Power loss / corrupt database", "quick_check after unclean shutdown; corrupt DB moved aside and rebuilt"),
    8: ("MLflow backend unavailable / locked", "training unaffected; backlog replayed later"),
    9: ("S3 endpoint down (connection refused)", "upload pending retry with a time; training unaffected"),
    10: ("S3 500/503 for the first N requests", "succeeds after transient errors; gives up cleanly after the budget"),
    11: ("S3 slow / hung connection", "bounded timeouts; cancel leaves no partial object"),
    12: ("App killed mid multipart upload", "upload id + part ETags saved; resumed or aborted on restart; orphans swept"),
    13: ("R2 checksum / header incompatibility", "no crc64nvme / aws-chunked; Content-MD5 + sha256 metadata"),
    14: ("Unequal multipart part sizes", "equal non-final parts, also across a resumed upload"),
    15: ("Credentials missing / keyring unavailable", "clear state; no plaintext secret anywhere"),
    16: ("Offline: pretrained weights not cached", "fails fast naming the weights and the ways out"),
    17: ("Offline: Ultralytics font / AMP downloads", "offline run finishes with zero connection attempts"),
    18: ("Corrupt image", "rejected file listed with its reason; training runs on the good ones"),
    19: ("Decompression-bomb image", "rejected from the header, nothing allocated"),
    20: ("Truncated / invalid labelme JSON", "per-file error; conversion continues"),
    21: ("Labelme points outside the image", "clipped or rejected; coordinates stay in [0, 1]"),
    22: ("Labelme imagePath traversal", "nothing read or written outside the dataset / output"),
    23: ("Empty or 1-sample class in a stratified split", "clear message naming the class, no traceback"),
    24: ("Zip with ../, absolute, drive or symlink entries", "archive refused, nothing written outside staging"),
    25: ("Zip bomb", "caps on bytes, ratio and entries; partial staging removed"),
    26: ("data.yaml with `download:` code", "user YAML never passed to Ultralytics; nothing executed"),
    27: ("Malicious pickle checkpoint", "weights_only loads; sentinel never written"),
    28: ("Ultralytics .pt from outside the app", "loaded only with trust by sha256 or explicit consent"),
    29: ("Malicious Hugging Face config / pickle weights", "transformers >= 5.3; safetensors only; no remote code"),
    30: ("Training blocks the GUI", "all training in a subprocess; the GUI thread stays responsive"),
    31: ("Worker floods stdout", "bounded memory, overflow to worker.log, no deadlock"),
    32: ("Two app instances on one data dir", "second instance refused naming the first; a job runs once"),
    33: ("Supply-chain drift", "hash-locked installs; no pip at run time"),
}

COVERED_ELSEWHERE: dict[str, tuple[tuple[int, ...], str]] = {
    "tests/e2e/test_timm_training.py::test_kill_minus_nine_mid_epoch_then_resume":
        ((1, 4), "SIGKILL of the worker mid-epoch, then resume"),
    "tests/e2e/test_transformers_training.py::test_kill_mid_epoch_then_resume_then_extend":
        ((1, 4), "worker killed mid-epoch, then resume and extend"),
    "tests/e2e/test_timm_training.py::test_app_killed_worker_follows_and_job_becomes_interrupted":
        ((3,), "the app process killed while its worker trains"),
    "tests/unit/test_store.py::test_reconcile_marks_orphaned_running_jobs_interrupted":
        ((3,), "a running job whose runner is gone at start-up"),
    "tests/unit/test_store.py::test_start_up_kills_only_the_job_s_own_leftover_worker":
        ((3,), "a leftover worker PID, and a recycled PID, at start-up"),
    "tests/unit/test_job_cli.py::test_cancel_a_queued_job_and_resume_needs_last_pt":
        ((4,), "resume of a job without last.pt"),
    "tests/e2e/test_ultralytics_resume.py::test_cancel_resume_and_extend_continue_the_epoch_count":
        ((4,), "cancel, resume and extend of an Ultralytics job"),
    "tests/unit/test_store.py::test_concurrent_reads_and_writes_never_fail_with_locked":
        ((6,), "concurrent readers and writers on one SQLite file"),
    "tests/unit/tracking/test_listener.py::test_unreachable_server_never_blocks_and_metrics_are_resent":
        ((8,), "tracking server unreachable during a run"),
    "tests/unit/tracking/test_listener.py::test_locked_store_leaves_a_gap_that_is_filled_when_it_unlocks":
        ((8,), "MLflow store locked mid-run"),
    "tests/unit/storage/test_outbox.py::test_endpoint_down_job_completes_then_sync_uploads_when_back":
        ((9,), "S3 endpoint stopped (connection refused), then back"),
    "tests/unit/storage/test_outbox.py::test_503s_are_retried_and_the_object_verified":
        ((10,), "fault proxy answers 503 twice"),
    "tests/unit/storage/test_outbox.py::test_503s_beyond_the_retry_budget_fail_cleanly":
        ((10,), "fault proxy answers 503 beyond the retry budget"),
    "tests/unit/storage/test_outbox.py::test_slow_endpoint_times_out_within_its_attempts":
        ((11,), "fault proxy accepts and stalls"),
    "tests/gui/test_datasets_page.py::test_r2_dataset_downloads_with_progress_and_cancel_leaves_nothing":
        ((11,), "cancel mid-transfer"),
    "tests/unit/storage/test_outbox.py::test_connection_reset_mid_multipart_upload":
        ((12,), "connection reset mid multipart upload"),
    "tests/unit/storage/test_outbox.py::test_row_left_uploading_by_a_dead_process_is_taken_over":
        ((12,), "upload row left 'uploading' by a dead process"),
    "tests/unit/storage/test_s3_roundtrip.py::test_small_upload_download_round_trip_with_sha256":
        ((13,), "PutObject headers checked on the wire (botocore event hook)"),
    "tests/unit/storage/test_s3_roundtrip.py::test_multipart_20mb_equal_parts_and_content_etag":
        ((13, 14), "UploadPart headers and sizes checked on the wire"),
    "tests/unit/storage/test_basics.py::test_digest_parts_are_equal_except_the_last":
        ((14,), "part plan of a file that is not a multiple of the part size"),
    "tests/unit/storage/test_basics.py::test_without_keyring_keys_go_to_a_0600_file_and_the_user_is_told":
        ((15,), "no keyring backend"),
    "tests/unit/storage/test_outbox.py::test_no_credentials_rows_stay_pending":
        ((15,), "no credentials at all"),
    "tests/unit/test_ultralytics_adapter.py::test_pretrained_that_is_not_cached_fails_at_once_with_the_ways_out":
        ((16,), "pretrained YOLO weights not cached, offline"),
    "tests/e2e/test_transformers_training.py::test_uncached_hub_model_fails_with_the_documented_message":
        ((16,), "Hub model not cached, offline"),
    "tests/e2e/test_ultralytics_network.py::test_segment_with_plots_offline_never_touches_the_network":
        ((17,), "offline segment run with plots (font check)"),
    "tests/e2e/test_offline.py::test_a_tracked_training_run_never_leaves_the_machine":
        ((17,), "tracked training runs under the network guard"),
    "tests/e2e/test_timm_training.py::test_corrupt_image_is_skipped_and_reported":
        ((18,), "truncated image in the training set"),
    "tests/unit/datasets/test_health.py::test_shallow_findings_name_each_file":
        ((18,), "0-byte, garbage and mislabelled image files"),
    "tests/unit/datasets/test_images.py::test_load_image_rgb_rejects_truncated_jpeg":
        ((18,), "truncated JPEG"),
    "tests/unit/datasets/test_images.py::test_png_bomb_rejected_from_header_without_allocating":
        ((19,), "50000x50000 PNG header"),
    "tests/unit/datasets/test_images.py::test_pixel_cap_is_configurable":
        ((19,), "image over a configured pixel cap"),
    "tests/unit/datasets/test_readers.py::test_truncated_json_and_path_traversal":
        ((20, 22), "truncated labelme JSON, imagePath escaping the dataset"),
    "tests/unit/datasets/test_readers.py::test_image_data_null_empty_and_embedded":
        ((20,), "imageData null / empty / embedded"),
    "tests/unit/datasets/test_readers.py::test_dice_shape_types_flags_and_bad_shapes":
        ((20,), "unknown shape types and malformed shapes"),
    "tests/unit/datasets/test_convert.py::test_labels_outside_class_list_are_skipped_not_crashing":
        ((20,), "labels outside the class list"),
    "tests/unit/datasets/test_convert.py::test_segment_polygons_normalised_and_clipped":
        ((21,), "polygon points outside the image"),
    "tests/unit/datasets/test_convert.py::test_clip_polygon_geometry":
        ((21,), "polygon clipping geometry"),
    "tests/unit/datasets/test_convert.py::test_traversal_json_writes_nothing_outside_output":
        ((22,), "imagePath ../../x.jpg and absolute paths on conversion"),
    "tests/unit/datasets/test_readers.py::test_labelme_windows_paths":
        ((22,), "Windows-style imagePath"),
    "tests/unit/datasets/test_splits.py::test_one_image_class_kept_in_train_with_warning":
        ((23,), "a class with one image in a stratified split"),
    "tests/unit/datasets/test_splits.py::test_empty_val_is_an_error":
        ((23,), "a split that leaves validation empty"),
    "tests/e2e/test_timm_training.py::test_empty_class_folder_is_named":
        ((23,), "an empty class folder"),
    "tests/unit/datasets/test_zipsafe.py::test_path_escapes_are_refused":
        ((24,), "../, absolute, C:/ and backslash entries"),
    "tests/unit/datasets/test_zipsafe.py::test_symlink_entries_are_refused":
        ((24,), "symlink entries"),
    "tests/unit/datasets/test_zipsafe.py::test_zip_bomb_ratio_cap":
        ((25,), "high compression ratio"),
    "tests/unit/datasets/test_zipsafe.py::test_total_size_and_file_count_caps":
        ((25,), "total size and entry count over the caps"),
    "tests/unit/datasets/test_zipsafe.py::test_lying_sizes_are_caught_while_streaming":
        ((25,), "entries whose declared sizes lie"),
    "tests/unit/datasets/test_readers.py::test_yolo_segment_and_download_key_never_run":
        ((26,), "data.yaml with a download: key"),
    "tests/unit/test_ultralytics_adapter.py::test_prepare_data_writes_our_own_data_yaml":
        ((26,), "Ultralytics gets our generated data.yaml only"),
    "tests/unit/test_security_scan.py::test_every_torch_load_says_weights_only":
        ((27,), "a torch.load without an explicit weights_only (AST scan)"),
    "tests/e2e/test_transformers_training.py::test_folder_with_only_pickle_weights_is_refused":
        ((29,), "a model folder with pytorch_model.bin only"),
    "tests/gui/test_main_window.py::test_app_imports_no_ml_framework":
        ((30,), "partial: the GUI process never imports a framework (training only in workers)"),
    "tests/gui/test_workers.py::test_a_new_start_cancels_the_old_and_its_late_result_is_dropped":
        ((30,), "partial: background tasks off the GUI thread, stale results dropped"),
    "tests/e2e/test_runner_faults.py::test_stdout_flood_is_bounded_and_the_job_completes":
        ((31,), "50 MB of non-event stdout"),
    "tests/unit/test_security_scan.py::test_ultralytics_never_runs_pip_in_the_worker_environment":
        ((33,), "Ultralytics' check_requirements for a missing package"),
}
