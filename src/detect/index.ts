export { FINDING_KINDS, findInconsistencies, type ArbiterView, type Finding, type FindingKind } from './rules.ts';
export { DetectionStore, type RecordedFinding } from './store.ts';
export { Detector, type DetectorContext } from './detector.ts';
