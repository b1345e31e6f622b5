import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

// The contract's custom search attributes. scripts/search-attributes.txt registers the same list on the
// dev server; a test keeps the two equal.
export const IncidentSeverity = defineSearchAttributeKey('IncidentSeverity', SearchAttributeType.KEYWORD);
export const IncidentStatus = defineSearchAttributeKey('IncidentStatus', SearchAttributeType.KEYWORD);
export const IncidentRunbook = defineSearchAttributeKey('IncidentRunbook', SearchAttributeType.KEYWORD);
export const IncidentTeam = defineSearchAttributeKey('IncidentTeam', SearchAttributeType.KEYWORD);
export const AwaitingApproval = defineSearchAttributeKey(
  'AwaitingApproval',
  SearchAttributeType.KEYWORD_LIST,
);
export const ReportDueAt = defineSearchAttributeKey('ReportDueAt', SearchAttributeType.DATETIME);
export const ReportStatus = defineSearchAttributeKey('ReportStatus', SearchAttributeType.KEYWORD);
/** True on the incidents (and their reports) of a rehearsal, `incidentctl drill`; absent otherwise. */
export const IncidentDrill = defineSearchAttributeKey('IncidentDrill', SearchAttributeType.BOOL);

export const searchAttributeKeys = [
  IncidentSeverity,
  IncidentStatus,
  IncidentRunbook,
  IncidentTeam,
  AwaitingApproval,
  ReportDueAt,
  ReportStatus,
  IncidentDrill,
] as const;
