//! One tomosynthesis unit as one type: the five devices named by a single generic parameter.
//!
//! Generic code (the sequencer, the bridge's virtual device, test harnesses) takes `U: Unit` instead of five
//! type parameters each with its own bound. [`Devices`] is the plain struct of five devices and the one
//! implementation most code needs; [`Unit::parts`] borrows all five at once, so a caller can hold the tube and
//! the paddle together, as the blanket `&mut T` impls of the device traits make the borrowed parts devices too.

use crate::devices::{CompressionPaddle, Detector, Gantry, Interlocks, XrayTube};

/// The devices of one unit.
#[derive(Debug)]
pub struct Devices<T, G, D, P, I> {
    /// X-ray tube and generator.
    pub tube: T,
    /// Arc gantry.
    pub gantry: G,
    /// Detector.
    pub detector: D,
    /// Compression paddle.
    pub paddle: P,
    /// Interlock chain.
    pub interlocks: I,
}

/// The five devices of a unit, borrowed together.
pub type Parts<'a, U> = Devices<
    &'a mut <U as Unit>::Tube,
    &'a mut <U as Unit>::Gantry,
    &'a mut <U as Unit>::Detector,
    &'a mut <U as Unit>::Paddle,
    &'a mut <U as Unit>::Interlocks,
>;

/// A whole unit: tube, gantry, detector, compression paddle and interlock chain.
pub trait Unit {
    /// X-ray tube and generator.
    type Tube: XrayTube;
    /// Arc gantry.
    type Gantry: Gantry;
    /// Detector.
    type Detector: Detector;
    /// Compression paddle.
    type Paddle: CompressionPaddle;
    /// Interlock chain.
    type Interlocks: Interlocks;

    /// All five devices, borrowed at once.
    fn parts(&mut self) -> Parts<'_, Self>;
}

impl<T, G, D, P, I> Unit for Devices<T, G, D, P, I>
where
    T: XrayTube,
    G: Gantry,
    D: Detector,
    P: CompressionPaddle,
    I: Interlocks,
{
    type Tube = T;
    type Gantry = G;
    type Detector = D;
    type Paddle = P;
    type Interlocks = I;

    fn parts(&mut self) -> Parts<'_, Self> {
        Devices {
            tube: &mut self.tube,
            gantry: &mut self.gantry,
            detector: &mut self.detector,
            paddle: &mut self.paddle,
            interlocks: &mut self.interlocks,
        }
    }
}

impl<U: Unit + ?Sized> Unit for &mut U {
    type Tube = U::Tube;
    type Gantry = U::Gantry;
    type Detector = U::Detector;
    type Paddle = U::Paddle;
    type Interlocks = U::Interlocks;

    fn parts(&mut self) -> Parts<'_, Self> {
        (**self).parts()
    }
}
