export { LockStore, type AcquireResult, type LockHolder, type LockRow, type ExpiredLock, type LockListener } from './lock-store.ts';
export { withLease, type Lease, type LeaseOptions } from './lease.ts';
