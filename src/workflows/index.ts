// The workflows the worker serves. Every name here is part of the public contract.
export { incidentWorkflow } from './incident.js';
export { postIncidentWorkflow } from './post-incident.js';
export { healthMonitorWorkflow, kafkaLagMonitorWorkflow, gmailWatchRenewalWorkflow } from './monitors.js';
