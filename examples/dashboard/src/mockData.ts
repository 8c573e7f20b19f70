// Sample data shown in fallback mode, when the hub cannot be reached. Ids
// are negative so that sample leads can never be mistaken for, or merged
// with, real ones, and every name says it is a sample.
import type { Lead, Metrics } from './contract.ts';

const at = '2026-01-01T09:00:00.000Z';

export const mockLeads: Lead[] = [
  { id: -1, name: 'Sample lead: Ada Lovelace', company: 'Analytical Engines', source: 'LinkedIn', status: 'Qualified', score: 91, createdAt: at, updatedAt: at },
  { id: -2, name: 'Sample lead: Grace Hopper', company: 'Compilers Inc', source: 'Google', status: 'Scored', score: 74, createdAt: at, updatedAt: at },
  { id: -3, name: 'Sample lead: Alan Turing', company: 'Bletchley Labs', source: 'YellowPages', status: 'Enriching', createdAt: at, updatedAt: at },
  { id: -4, name: 'Sample lead: Edsger Dijkstra', company: 'Shortest Paths BV', source: 'Facebook', status: 'Disqualified', score: 32, createdAt: at, updatedAt: at },
  { id: -5, name: 'Sample lead: Barbara Liskov', company: 'Substitution Ltd', source: 'Manual', status: 'New', createdAt: at, updatedAt: at },
];

export const mockMetrics: Metrics = {
  totalLeads: 5,
  qualifiedLeads: 1,
  conversionRate: 20,
  activeHarvesters: 0,
  processingTime: 1.5,
  scoreAverage: 65.7,
  dailyGrowth: 0,
  weeklyGrowth: 0,
  newLeadsToday: 0,
  processedToday: 0,
  leadsBySource: { LinkedIn: 1, Google: 1, YellowPages: 1, Facebook: 1, Manual: 1 },
  leadsByStatus: { Qualified: 1, Scored: 1, Enriching: 1, Disqualified: 1, New: 1 },
};
