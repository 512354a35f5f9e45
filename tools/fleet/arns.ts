/** Every simulated resource lives under one account and one cluster, so ARNs are built, never parsed. */
const CLUSTER = 'arn:sim:k8s:local:000000000000:cluster/prod';

export function deploymentArn(namespace: string, name: string): string {
  return `${CLUSTER}/ns/${namespace}/deployment/${name}`;
}

/** A replaced pod keeps this ARN (its slot); its identity changes through `uid`/`generation` instead. */
export function podArn(deployment: string, deploymentName: string, index: number): string {
  return `${deployment}/pod/${deploymentName}-${index}`;
}

export function nodeArn(name: string): string {
  return `${CLUSTER}/node/${name}`;
}
