// The entry the workflow bundle is built from (src/workflow-bundle.ts): every workflow the worker serves,
// each with the Worker Versioning behaviour it has under a versioned worker (docs/upgrades.md). This module
// runs inside Temporal's workflow sandbox: it may import only workflow code.
import { setWorkflowOptions, workflowInfo } from '@temporalio/workflow';
import type { VersioningBehavior, WorkflowDefinitionOptions } from '@temporalio/common';
import {
  gmailWatchRenewalWorkflow,
  healthMonitorWorkflow,
  incidentWorkflow,
  kafkaLagMonitorWorkflow,
  postIncidentWorkflow,
} from './workflows/index.js';

export * from './workflows/index.js';

/**
 * The behaviour, declared only where a versioned worker runs the workflow: the server refuses a workflow
 * task completed with a behaviour by an unversioned worker (tests, no TEMPORAL_BUILD_ID), and the same
 * bundle runs on both. An unversioned worker has a build id (the SDK's bundle checksum) but no deployment
 * name. A run first executed by an unversioned worker keeps the versioned worker's default (pinned).
 */
const versioned = (versioningBehavior: VersioningBehavior) => (): WorkflowDefinitionOptions =>
  workflowInfo().currentDeploymentVersion?.deploymentName ? { versioningBehavior } : {};

// An incident finishes on the build it was opened on (its continue-as-new runs too): a change to the
// incident workflow does not meet a running incident by accident. Changes still replay the recorded
// histories (patched()): a rollback or a stranded build moves incidents between builds (docs/upgrades.md).
setWorkflowOptions(versioned('PINNED'), incidentWorkflow);

// The monitors' runs last seconds: pinned, and each scheduled run starts on the current build.
setWorkflowOptions(versioned('PINNED'), healthMonitorWorkflow);
setWorkflowOptions(versioned('PINNED'), kafkaLagMonitorWorkflow);
setWorkflowOptions(versioned('PINNED'), gmailWatchRenewalWorkflow);

// A post-incident report stays open for days (24 h deadline, then follow-ups): pinning it would keep every
// old build running that long. It moves to the current build at its next workflow task, so a change to it
// must replay its recorded histories (test/histories, test/workflows/replay.test.ts), behind patched().
setWorkflowOptions(versioned('AUTO_UPGRADE'), postIncidentWorkflow);
