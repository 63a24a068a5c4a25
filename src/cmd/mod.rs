pub mod demo;
pub mod inspect;
pub mod report;
pub mod rules;
pub mod scan;
pub mod serve;
pub mod stdio;
