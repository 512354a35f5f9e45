export { LockStore, releaseLeases, type AcquireResult, type ReleaseInput, type LockHolder, type LockRow, type ExpiredLock, type LockListener } from './lock-store.ts';
export { withLease, type Lease, type LeaseOptions } from './lease.ts';
